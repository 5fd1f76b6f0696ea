"""The Django admin (site staff): every save and delete goes through a service.

Django's ModelAdmin writes rows itself; each admin here overrides the hooks
that write (``save_model``, ``save_related``, ``delete_model``,
``delete_queryset``) so the owner rules, the chat box refresh and the logout of
a deactivated or deleted operator happen exactly as they do from the dashboard
or the API. Inlines that would write rows behind a service's back are
read-only, with a link to the object's own page.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponseRedirect
from django.utils.translation import gettext_lazy as _

from accounts import services as account_services
from accounts.auth import token_device_tag, token_revoke
from accounts.models import Account, ApiToken, Operator, Status
from conversations import services as conversation_services
from conversations.faq import services as faq_services
from conversations.models import Conversation, FaqEntry, Message, Visitor
from groups import services as group_services
from groups.models import Group, Membership
from hours import services as hours_services
from hours.models import OpeningHours
from presence import services as presence_services
from presence.models import ChatBoxEvent, Source, StatusEvent


class ServiceAdmin(admin.ModelAdmin):
    """A service's ``ValidationError`` (an owner rule, a taken key) rolls the
    whole admin request back and comes back as an error message on the page."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return self._guarded(request, super().changeform_view, request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        return self._guarded(request, super().delete_view, request, object_id, extra_context)

    def response_action(self, request, queryset, *args, **kwargs):
        return self._guarded(request, super().response_action, request, queryset, *args, **kwargs)

    def _guarded(self, request, view, *args, **kwargs):
        try:
            with transaction.atomic():
                return view(*args, **kwargs)
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


def _changed(form: forms.ModelForm, allowed: frozenset[str]) -> dict[str, object]:
    return {name: form.cleaned_data[name] for name in form.changed_data if name in allowed}


# --- accounts -------------------------------------------------------------------


class OperatorInline(admin.TabularInline):
    """Read-only: operators are changed on their own page, through the service."""

    model = Operator
    fields = ("email", "display_name", "role", "status", "is_active")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class OpeningHoursInline(admin.StackedInline):
    """Read-only: opening hours are changed on their own page, through the service."""

    model = OpeningHours
    fields = ("enabled", "timezone", "weekly", "exceptions")
    readonly_fields = fields
    extra = 0
    max_num = 1
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class AccountOpeningHoursInline(OpeningHoursInline):
    def get_queryset(self, request):
        return super().get_queryset(request).filter(group__isnull=True)


class AccountAddForm(forms.ModelForm):
    """An account is created with its owner, as ``create_account`` does."""

    owner_email = forms.EmailField(label=_("Owner's e-mail"))
    owner_password = forms.CharField(
        label=_("Owner's password"),
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text=_("Leave empty to let the owner set one through a password reset."),
    )

    class Meta:
        model = Account
        fields = ("name",)


@admin.register(Account)
class AccountAdmin(ServiceAdmin):
    list_display = ("name", "widget_key", "timezone", "language", "stale_after_seconds", "created_at")
    list_filter = ("language",)
    search_fields = ("name", "widget_key")
    readonly_fields = ("widget_key", "created_at")
    inlines = [OperatorInline, AccountOpeningHoursInline]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = AccountAddForm
            kwargs["fields"] = ("name", "owner_email", "owner_password")
        return super().get_form(request, obj, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ("name", "owner_email", "owner_password")})]
        return super().get_fieldsets(request, obj)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def save_model(self, request, obj, form, change):
        if change:
            stored = Account.objects.get(pk=obj.pk)
            account_services.account_update(account=stored, **_changed(form, account_services.ACCOUNT_FIELDS))
            return
        account, _owner = account_services.account_create(
            name=form.cleaned_data["name"],
            email=form.cleaned_data["owner_email"],
            password=form.cleaned_data["owner_password"] or None,
        )
        # The admin goes on with ``obj`` (the log entry, the redirect): make it the saved account.
        obj.pk, obj.widget_key, obj.created_at = account.pk, account.widget_key, account.created_at
        obj._state.adding, obj._state.db = False, account._state.db

    def save_related(self, request, form, formsets, change):
        form.save_m2m()
        for formset in formsets:
            # Both inlines are read-only: nothing of theirs is written, but the
            # admin's change message reads what the formset would have saved.
            formset.save(commit=False)

    def delete_model(self, request, obj):
        account_services.account_delete(account=obj)

    def delete_queryset(self, request, queryset):
        for account in queryset:
            account_services.account_delete(account=account)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("group",)


@admin.action(description=_("Switch offline"))
def switch_offline(modeladmin, request, queryset):
    changed = sum(
        presence_services.operator_set_status(operator=operator, status=Status.OFFLINE, source=Source.ADMIN)
        for operator in queryset.filter(status=Status.ONLINE, account__isnull=False)
    )
    modeladmin.message_user(request, _("%(n)d operator(s) switched offline.") % {"n": changed}, messages.SUCCESS)


def _formset_ids(formset, field: str) -> set[int]:
    """The ids a membership inline ends with: kept rows and new ones, not deleted ones."""
    ids = set()
    for row in formset.forms:
        data = getattr(row, "cleaned_data", None) or {}
        if data and not data.get("DELETE") and data.get(field) is not None:
            ids.add(data[field].id)
    return ids


class OperatorPasswordForm(AdminPasswordChangeForm):
    """The admin's "change password" page sets it through the service."""

    def save(self, commit: bool = True) -> Operator:
        # "Password-based authentication: disabled" (None) ends their logins too.
        password = self.cleaned_data.get("password1") if self.cleaned_data.get("set_usable_password") else None
        return account_services.operator_set_password(operator=self.user, password=password)


@admin.register(Operator)
class OperatorAdmin(ServiceAdmin, UserAdmin):
    change_password_form = OperatorPasswordForm
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

    def save_model(self, request, obj, form, change):
        if change:
            account_services.operator_update(
                operator=obj, actor=None, **_changed(form, account_services.OPERATOR_STAFF_FIELDS)
            )
            return
        operator = account_services.operator_create(
            account=form.cleaned_data["account"],
            email=form.cleaned_data["email"],
            display_name=form.cleaned_data["display_name"],
            password=form.cleaned_data.get("password1") or None,
            role=form.cleaned_data["role"],
        )
        obj.pk, obj.password = operator.pk, operator.password
        obj._state.adding, obj._state.db = False, operator._state.db

    def save_related(self, request, form, formsets, change):
        # Permissions and auth groups (site staff) are the admin's own; chat
        # groups go through the service that refreshes the chat box.
        form.save_m2m()
        operator = form.instance
        for formset in formsets:
            formset.save(commit=False)  # nothing written: the admin's change message reads it
            if formset.model is Membership:
                group_services.operator_set_groups(operator=operator, group_ids=_formset_ids(formset, "group"))

    def delete_model(self, request, obj):
        account_services.operator_delete(operator=obj)

    def delete_queryset(self, request, queryset):
        for operator in queryset:
            account_services.operator_delete(operator=operator)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Audit rows: never added, changed or deleted on their own pages. They go
    with the account or operator they belong to, whose delete page asks this
    admin whether each of them may go."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        match = getattr(request, "resolver_match", None)
        own_pages = f"{self.opts.app_label}_{self.opts.model_name}_"
        return obj is not None and match is not None and not (match.url_name or "").startswith(own_pages)


@admin.register(ApiToken)
class ApiTokenAdmin(ServiceAdmin):
    list_display = ("operator", "device", "is_mobile", "created_at", "last_used_at")
    search_fields = ("operator__email", "device")
    readonly_fields = ("operator", "key_hash", "device", "is_mobile", "created_at", "last_used_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        # Revoking a token logs its device out, as the API's logout does.
        if obj.operator.account_id is not None:
            presence_services.operator_logout(operator=obj.operator, device=token_device_tag(obj))
        token_revoke(token=obj)

    def delete_queryset(self, request, queryset):
        for token in queryset.select_related("operator"):
            self.delete_model(request, token)


# --- presence (audit trails) ------------------------------------------------------


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


# --- groups ---------------------------------------------------------------------


class GroupMembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("operator",)


@admin.register(Group)
class GroupAdmin(ServiceAdmin):
    list_display = ("name", "key", "account")
    list_filter = ("account",)
    search_fields = ("name", "key", "account__name")
    inlines = [GroupMembershipInline, OpeningHoursInline]

    def get_readonly_fields(self, request, obj=None):
        # A group stays in its account: its members and schedule belong there.
        return ("account",) if obj is not None else ()

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            group_services.group_update(group=Group.objects.get(pk=obj.pk), key=data["key"], name=data["name"])
            return
        group = group_services.group_create(account=data["account"], key=data["key"], name=data["name"])
        obj.pk = group.pk
        obj._state.adding, obj._state.db = False, group._state.db

    def save_related(self, request, form, formsets, change):
        group = form.instance
        for formset in formsets:
            formset.save(commit=False)  # nothing written: the admin's change message reads it
            if formset.model is Membership:
                group_services.group_set_members(group=group, member_ids=_formset_ids(formset, "operator"))

    def delete_model(self, request, obj):
        group_services.group_delete(group=obj)

    def delete_queryset(self, request, queryset):
        for group in queryset:
            group_services.group_delete(group=group)


# --- hours ----------------------------------------------------------------------


@admin.register(OpeningHours)
class OpeningHoursAdmin(ServiceAdmin):
    list_display = ("account", "group", "enabled", "timezone", "updated_at")
    list_filter = ("enabled", "account")
    search_fields = ("account__name", "group__key")

    def get_readonly_fields(self, request, obj=None):
        return ("account", "group") if obj is not None else ()

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        hours = hours_services.opening_hours_set(
            account=obj.account,
            group=obj.group,
            enabled=data["enabled"],
            timezone=data["timezone"],
            weekly=data["weekly"],
            exceptions=data["exceptions"],
        )
        obj.pk = hours.pk
        obj._state.adding, obj._state.db = False, hours._state.db

    def delete_model(self, request, obj):
        hours_services.opening_hours_delete(hours=obj)

    def delete_queryset(self, request, queryset):
        for hours in queryset:
            hours_services.opening_hours_delete(hours=hours)


# --- conversations ---------------------------------------------------------------


class MessageInline(admin.TabularInline):
    """Messages are written by visitors, operators and the automatic rules, never here."""

    model = Message
    fields = ("seq", "created_at", "author", "operator", "kind", "body")
    readonly_fields = fields
    ordering = ("seq",)
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.action(description=_("Close the selected conversations"))
def close_conversations(modeladmin, request, queryset):
    for conversation_id in queryset.values_list("id", flat=True):
        conversation_services.conversation_close(conversation_id=conversation_id, actor=None)


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin):
    list_display = ("id", "account", "group", "visitor", "status", "assignee", "last_message_at", "waiting_since")
    list_filter = ("status", "account")
    search_fields = ("visitor__name", "visitor__email")
    date_hierarchy = "last_message_at"
    inlines = [MessageInline]
    actions = [close_conversations]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.opts.fields]


@admin.register(Visitor)
class VisitorAdmin(ReadOnlyAdmin):
    list_display = ("id", "account", "name", "email", "language", "created_at")
    list_filter = ("account",)
    search_fields = ("name", "email")
    exclude = ("token_hash",)


@admin.register(FaqEntry)
class FaqEntryAdmin(ServiceAdmin):
    """Saved and deleted through the FAQ services: the same checks (no HTML,
    a group of the entry's account) and the matcher's index follows at once."""

    list_display = ("question", "account", "language", "group", "enabled", "updated_at")
    list_filter = ("enabled", "language", "account")
    search_fields = ("question", "answer", "account__name")

    def get_readonly_fields(self, request, obj=None):
        return ("account",) if obj is not None else ()

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fields = {
            "question": data["question"],
            "phrasings": data.get("phrasings") or [],
            "answer": data["answer"],
            "language": data["language"],
            "group_id": data["group"].pk if data.get("group") else None,
            "enabled": data["enabled"],
        }
        if change:
            faq_services.faq_entry_update(entry=FaqEntry.objects.select_related("account").get(pk=obj.pk), **fields)
            return
        entry = faq_services.faq_entry_create(account=data["account"], **fields)
        obj.pk = entry.pk
        obj._state.adding, obj._state.db = False, entry._state.db

    def delete_model(self, request, obj):
        faq_services.faq_entry_delete(entry=obj)

    def delete_queryset(self, request, queryset):
        for entry in queryset:
            faq_services.faq_entry_delete(entry=entry)
