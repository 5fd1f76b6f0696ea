from django.contrib import admin

from groups.models import Group, Membership
from hours.models import OpeningHours
from presence import services


class GroupMembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("operator",)


class GroupOpeningHoursInline(admin.StackedInline):
    model = OpeningHours
    fields = ("account", "enabled", "timezone", "weekly", "exceptions")
    extra = 0
    max_num = 1


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ("name", "key", "account")
    list_filter = ("account",)
    search_fields = ("name", "key", "account__name")
    inlines = [GroupMembershipInline, GroupOpeningHoursInline]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.chat_box_refresh_on_commit(account_id=form.instance.account_id)
