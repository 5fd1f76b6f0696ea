from django.contrib.admin.apps import AdminConfig


class ChatstatusAdminConfig(AdminConfig):
    default_site = "chatstatus.admin.ChatstatusAdminSite"
