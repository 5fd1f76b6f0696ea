"""The inbox: conversations with visitors, and the small JSON endpoints its
page (static/dashboard/inbox.js) calls with the session and the CSRF token.

What an operator may see is rule 6, asked of ``conversations.selectors``
(reads) and enforced again by ``conversations.services`` (writes): anything
else is a 404, never a 403. The page is rendered once by the server; the
operator socket's ``conversation`` and ``message`` frames keep it live.
"""

import datetime
import logging
import zoneinfo
from collections.abc import Callable
from typing import TypedDict

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Operator
from conversations import selectors, services
from conversations.faq.selectors import SuggestionPayload, faq_suggestion
from conversations.models import BODY_MAX, Conversation
from conversations.payloads import ConversationPayload, conversation_payload, iso, message_payload
from conversations.selectors import VIEW_ALL, VIEW_CLOSED, VIEW_MINE, VIEW_WAITING, inbox_rows
from dashboard.forms.inbox import AssignForm, ListForm, ReplyForm
from dashboard.views.base import dashboard_json, dashboard_page, render_page
from groups.models import Group

logger = logging.getLogger(__name__)


class Preview(TypedDict):
    author: str
    body: str


class InboxRow(ConversationPayload):
    """A conversation in the list: its public shape and its last message, cut short."""

    preview: Preview | None


class VisitorDetails(TypedDict):
    name: str
    email: str
    language: str
    language_name: str
    page_url: str
    first_page: str
    group_name: str
    since: str | None
    # An IANA name ("" when unknown): the page shows the visitor's clock in it.
    time_zone: str


# --- reads ----------------------------------------------------------------------------


def inbox_row(conversation: Conversation) -> InboxRow:
    preview = None
    if getattr(conversation, "preview_author", None):
        preview = {"author": conversation.preview_author, "body": conversation.preview_body or ""}
    return {**conversation_payload(conversation), "preview": preview}


def _language_name(code: str) -> str:
    if not code:
        return ""
    try:
        return translation.get_language_info(code)["name_translated"]
    except KeyError:
        return code


def visitor_details(conversation: Conversation) -> VisitorDetails:
    visitor = conversation.visitor
    return {
        "name": visitor.name,
        "email": visitor.email,
        "language": visitor.language,
        "language_name": _language_name(visitor.language),
        "page_url": conversation.page_url or visitor.first_page,
        "first_page": visitor.first_page,
        "group_name": conversation.group.name if conversation.group_id else "",
        "since": iso(visitor.created_at),
        "time_zone": visitor.time_zone,
    }


def _conversation_or_404(request: HttpRequest, conversation_id: int) -> Conversation:
    conversation = selectors.conversation_for_operator(operator=request.user, conversation_id=conversation_id)
    if conversation is None:
        raise Http404
    return conversation


def _not_found() -> JsonResponse:
    return JsonResponse({"error": "not_found"}, status=404)


# --- the page ---------------------------------------------------------------------------


def _views() -> list[dict]:
    labels = (
        (VIEW_WAITING, _("Waiting for a reply")),
        (VIEW_MINE, _("Mine")),
        (VIEW_ALL, _("All I may see")),
        (VIEW_CLOSED, _("Closed")),
    )
    base = reverse("dashboard:inbox")
    return [{"key": key, "label": label, "url": f"{base}?view={key}"} for key, label in labels]


def _row_context(conversation: Conversation, *, tz: zoneinfo.ZoneInfo, today: datetime.date) -> dict:
    local = conversation.last_message_at.astimezone(tz)
    return {
        "conversation": conversation,
        "name": conversation.visitor.name or conversation.visitor.email,
        "initial": (conversation.visitor.name or conversation.visitor.email or "?")[:1].upper(),
        "time": local.strftime("%H:%M") if local.date() == today else local.date().isoformat(),
        "iso": iso(conversation.last_message_at),
        "preview_author": getattr(conversation, "preview_author", "") or "",
        "preview_body": getattr(conversation, "preview_body", "") or "",
    }


@require_GET
@dashboard_page()
def inbox(request: HttpRequest, conversation_id: int | None = None) -> HttpResponse:
    """``/inbox/`` (``?view=`` one of the lists) and ``/inbox/<id>/`` (the same
    page with that conversation open)."""
    me = request.user
    account = me.account
    opened = _conversation_or_404(request, conversation_id) if conversation_id is not None else None
    form = ListForm(request.GET)
    view, before = (form.cleaned_data["view"], form.cleaned_data["before"]) if form.is_valid() else (VIEW_ALL, None)
    conversations, cursor = inbox_rows(operator=me, view=view, before=before)
    tz = zoneinfo.ZoneInfo(account.timezone)
    today = timezone.now().astimezone(tz).date()
    colleagues = Operator.objects.filter(account=account, is_active=True).order_by("display_name", "id")
    base = reverse("dashboard:inbox")
    config = {
        "view": view,
        "open": opened.id if opened else None,
        "next": cursor,
        "rows": [inbox_row(c) for c in conversations],
        "tz": account.timezone,
        "body_max": BODY_MAX,
        "urls": {
            "inbox": base,
            "list": reverse("dashboard:inbox_list"),
            # "0" stands for the id: inbox.js puts the real one in its place.
            "page": reverse("dashboard:inbox_conversation", args=[0]),
            "conversation": reverse("dashboard:inbox_conversation_json", args=[0]),
            "reply": reverse("dashboard:inbox_reply", args=[0]),
            "assign": reverse("dashboard:inbox_assign", args=[0]),
            "close": reverse("dashboard:inbox_close", args=[0]),
        },
        "groups": dict(Group.objects.filter(account=account).values_list("key", "name")),
        "texts": {
            "visitor_plain": _("Visitor"),
            "operator": _("Operator"),
            "you": _("You"),
            "unassigned": _("Unassigned"),
            "reply_prefix": _("Reply:"),
            "automatic_prefix": _("Automatic:"),
            "automatic": _("Automatic message"),
            "bot": _("FAQ bot"),
            # What the visitor said of a bot answer (FaqAnswer.Feedback).
            "feedback": {
                "helpful": _("The visitor says this helped"),
                "talk_to_person": _("The visitor asked for a person"),
            },
            "empty": _("Nothing here. When a visitor writes in the widget, the conversation appears here at once."),
            "empty_closed": _("No closed conversations."),
            "sending": _("Sending…"),
            "retrying": _("Not sent yet: no connection. Trying again…"),
            "failed": _("Not sent: %(error)s"),
            "try_again": _("Try again"),
            "closed_error": _("the conversation is closed."),
            "gone_error": _("you can no longer see this conversation."),
            "invalid_error": _("the reply was refused."),
            "gone_error_pane": _("You can no longer see this conversation."),
            "action_failed": _("That did not work. Try again."),
            "load_failed": _("The conversation could not be loaded. Trying again…"),
            "typing": _("%(name)s is typing…"),
            "not_given": _("Not given"),
            "no_group": _("No group"),
            "notify_on": _("Desktop notifications are on"),
            "notify_blocked": _("Notifications are blocked in this browser's settings"),
            "status": {value: str(label) for value, label in Conversation.Status.choices},
        },
    }
    context = {
        "nav": "inbox",
        "view": view,
        "views": _views(),
        "rows": [_row_context(c, tz=tz, today=today) for c in conversations],
        "next_url": f"{base}?view={view}&before={cursor}" if cursor else "",
        "opened": opened,
        "colleagues": colleagues,
        "inbox": config,
    }
    return render_page(request, "dashboard/inbox.html", context)


# --- JSON for inbox.js ----------------------------------------------------------------------


@require_GET
@dashboard_json
def inbox_count(request: HttpRequest) -> JsonResponse:
    """The nav's number: open conversations I may open whose visitor waits."""
    return JsonResponse({"waiting": selectors.conversations_waiting_count(operator=request.user)})


@require_GET
@dashboard_json
def inbox_list(request: HttpRequest) -> JsonResponse:
    """``?view=waiting|mine|all|closed&before=CURSOR``: one page of a list."""
    form = ListForm(request.GET)
    if not form.is_valid():
        return JsonResponse({"error": "invalid", "fields": form.errors.get_json_data()}, status=400)
    conversations, cursor = inbox_rows(
        operator=request.user, view=form.cleaned_data["view"], before=form.cleaned_data["before"]
    )
    return JsonResponse({"conversations": [inbox_row(c) for c in conversations], "next": cursor})


@require_GET
@dashboard_json
def conversation_json(request: HttpRequest, conversation_id: int) -> JsonResponse:
    """One conversation with its messages (``?after=SEQ``: only the newer ones)."""
    conversation = selectors.conversation_for_operator(operator=request.user, conversation_id=conversation_id)
    if conversation is None:
        return _not_found()
    after = request.GET.get("after", "0")
    if not after.isdigit() or len(after) > 9:
        return JsonResponse({"error": "invalid", "fields": {"after": [_("Enter a whole number.")]}}, status=400)
    messages = selectors.conversation_messages(conversation_id=conversation.id, after=int(after))
    return JsonResponse(
        {
            "conversation": conversation_payload(conversation),
            "visitor": visitor_details(conversation),
            "messages": [message_payload(m) for m in messages],
            "suggestion": _suggestion(conversation),
        }
    )


def _suggestion(conversation: Conversation) -> SuggestionPayload | None:
    """The FAQ entry that best answers the visitor's last message, offered as
    a reply; never a reason for the conversation not to open."""
    if conversation.status != Conversation.Status.OPEN:
        return None
    try:
        return faq_suggestion(conversation=conversation)
    except Exception:
        logger.exception("FAQ suggestion for conversation %s failed", conversation.id)
        return None


def _conversation_action(view: Callable) -> Callable:
    """POST only, signed in, and the services' refusals as JSON: a conversation
    rule 6 hides (or of another account) is a 404, a closed one a 409."""

    @require_POST
    @dashboard_json
    def wrapped(request: HttpRequest, conversation_id: int) -> JsonResponse:
        try:
            return view(request, conversation_id)
        except services.ConversationNotFound:
            return _not_found()
        except services.ConversationClosed:
            return JsonResponse({"error": "closed"}, status=409)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


@_conversation_action
def conversation_reply(request: HttpRequest, conversation_id: int) -> JsonResponse:
    """``body``, ``client_id``: 201 with the message; the same ``client_id``
    again answers 200 with the same message (a retry after a lost answer)."""
    form = ReplyForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"error": "invalid", "fields": form.errors.get_json_data()}, status=400)
    posted = services.operator_message_post(
        conversation_id=conversation_id,
        operator=request.user,
        body=form.cleaned_data["body"],
        client_id=form.cleaned_data["client_id"],
    )
    return JsonResponse(message_payload(posted.message), status=201 if posted.created else 200)


@_conversation_action
def conversation_assign(request: HttpRequest, conversation_id: int) -> JsonResponse:
    """``operator``: an active colleague's id, or empty for nobody."""
    form = AssignForm(request.POST, account=request.user.account)
    if not form.is_valid():
        return JsonResponse({"error": "invalid", "fields": form.errors.get_json_data()}, status=400)
    assignee = form.cleaned_data["operator"]
    try:
        conversation = services.conversation_assign(
            conversation_id=conversation_id, actor=request.user, assignee_id=assignee.id if assignee else None
        )
    except services.InvalidAssignee:
        # Deactivated between the form's check and the service's.
        fields = {"operator": [{"message": _("Unknown operator."), "code": "invalid_choice"}]}
        return JsonResponse({"error": "invalid", "fields": fields}, status=400)
    return JsonResponse({"conversation": conversation_payload(conversation)})


@_conversation_action
def conversation_close(request: HttpRequest, conversation_id: int) -> JsonResponse:
    conversation = services.conversation_close(conversation_id=conversation_id, actor=request.user)
    return JsonResponse({"conversation": conversation_payload(conversation)})
