from django.apps import AppConfig


class PresenceConfig(AppConfig):
    name = "presence"
    verbose_name = "Presence"

    def ready(self) -> None:
        # The shortcuts register their start-up checks when imported.
        from presence import dispatch, pipeline, receivers  # noqa: F401

        receivers.connect()
