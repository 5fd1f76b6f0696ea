from django.contrib.admin.apps import AdminConfig


class ChatstatusAdminConfig(AdminConfig):
    default_site = "dashboard.sites.ChatstatusAdminSite"

    def ready(self) -> None:
        super().ready()
        # The project's own start-up checks and the database metrics' hook (the admin config is the
        # project's one app config).
        from chatstatus import admission, bodylimit, dbmetrics, graceful, handler, proxy  # noqa: F401
