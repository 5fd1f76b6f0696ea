from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.utils.translation import gettext_lazy as _

from groups.models import Membership
from hours.models import OpeningHours
from presence import services
from presence.models import Account, ApiToken, ChatBoxEvent, Operator, Source, Status, StatusEvent


class OperatorInline(admin.TabularInline):
    model = Operator
    fields = ("email", "display_name", "role", "status", "is_active")
    readonly_fields = ("status",)
    extra = 0
    show_change_link = True


class AccountOpeningHoursInline(admin.StackedInline):
    model = OpeningHours
    fields = ("enabled", "timezone", "weekly", "exceptions")
    extra = 0
    max_num = 1

    def get_queryset(self, request):
        return super().get_queryset(request).filter(group__isnull=True)


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ("name", "widget_key", "timezone", "language", "stale_after_seconds", "created_at")
    list_filter = ("language",)
    search_fields = ("name", "widget_key")
    readonly_fields = ("widget_key", "created_at")
    inlines = [OperatorInline, AccountOpeningHoursInline]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        services.chat_box_refresh_on_commit(account_id=obj.id)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("group",)


@admin.action(description=_("Switch offline"))
def switch_offline(modeladmin, request, queryset):
    changed = sum(
        services.operator_set_status(operator=operator, status=Status.OFFLINE, source=Source.ADMIN)
        for operator in queryset.filter(status=Status.ONLINE, account__isnull=False)
    )
    modeladmin.message_user(request, _("%(n)d operator(s) switched offline.") % {"n": changed}, messages.SUCCESS)


@admin.register(Operator)
class OperatorAdmin(UserAdmin):
    ordering = ("email",)
    list_display = ("email", "display_name", "account", "role", "status", "status_changed_at", "is_active")
    list_filter = ("status", "role", "is_active", "account")
    search_fields = ("email", "display_name", "account__name")
    readonly_fields = ("status", "status_changed_at", "last_login", "date_joined")
    actions = [switch_offline]
    inlines = [MembershipInline]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Profile"), {"fields": ("account", "display_name", "avatar", "role", "language")}),
        (_("Status"), {"fields": ("status", "status_changed_at")}),
        (_("Permissions"), {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {"classes": ("wide",), "fields": ("email", "display_name", "account", "role", "password1", "password2")},
        ),
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(StatusEvent)
class StatusEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "operator", "old", "new", "source", "device", "account")
    list_filter = ("source", "new", "account")
    search_fields = ("operator__email", "operator__display_name")
    date_hierarchy = "at"


@admin.register(ChatBoxEvent)
class ChatBoxEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "account", "group_key", "old", "new", "reason", "version")
    list_filter = ("new", "reason", "account")
    search_fields = ("account__name", "group_key")
    date_hierarchy = "at"


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("operator", "device", "is_mobile", "created_at", "last_used_at")
    search_fields = ("operator__email", "device")
    readonly_fields = ("operator", "key_hash", "device", "is_mobile", "created_at", "last_used_at")

    def has_add_permission(self, request):
        return False
