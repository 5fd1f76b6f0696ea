from django.contrib import admin

from hours.models import OpeningHours
from presence import services


@admin.register(OpeningHours)
class OpeningHoursAdmin(admin.ModelAdmin):
    list_display = ("account", "group", "enabled", "timezone", "updated_at")
    list_filter = ("enabled", "account")
    search_fields = ("account__name", "group__key")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        services.chat_box_refresh_on_commit(account_id=obj.account_id)
