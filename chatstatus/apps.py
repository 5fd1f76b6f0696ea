from django.contrib.admin.apps import AdminConfig


class ChatstatusAdminConfig(AdminConfig):
    default_site = "dashboard.sites.ChatstatusAdminSite"
