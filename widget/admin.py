from django.contrib import admin

from widget.models import OfflineMessage


@admin.register(OfflineMessage)
class OfflineMessageAdmin(admin.ModelAdmin):
    list_display = ("created_at", "account", "group", "name", "email", "handled_at")
    list_filter = ("account", "handled_at")
    search_fields = ("name", "email", "message")
    date_hierarchy = "created_at"
    readonly_fields = ("account", "group", "name", "email", "message", "page_url", "created_at")
