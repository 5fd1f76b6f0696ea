"""The widget's conversation endpoints (public, no cookies, CORS ``*``):
a visitor writes, reads their conversation and gives their name or e-mail.

A visitor is known by the ``X-Visitor-Token`` header; a token of another
account, or none, is worth nothing (404). Views translate HTTP and call one
selector or service.
"""

import json

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from conversations import inputs, selectors, services
from conversations.faq import services as faq_services
from conversations.forms import OfflineForm
from conversations.payloads import conversation_payload, message_payload
from presence.json_input import InvalidJson, json_parse
from widget.forms import form_errors
from widget.ratelimit import Hit, Limit, counted_in_front, ratelimit_hit, ratelimit_hits
from widget.selectors import WidgetAccount, widget_account
from widget.visitors import visitor_token_digest, visitor_token_valid

BODY_MAX_BYTES = 32 * 1024
TOKEN_HEADER = "X-Visitor-Token"  # noqa: S105 (a header name)
# A visitor types; a script floods. Per visitor: a fast chat, not a flood.
VISITOR_LIMITS = (Limit(count=20, period=60), Limit(count=300, period=3600))
# Per address: a whole office (or a mobile carrier's NAT) chats through one.
ADDRESS_LIMITS = (Limit(count=300, period=60),)
NOT_FOUND = {"error": "not_found"}
# The old offline form: one visitor writes a few, an address (an office) a few dozen.
OFFLINE_FORM_MAX_BYTES = 16 * 1024
OFFLINE_FORM_LIMITS = (Limit(count=5, period=60), Limit(count=30, period=3600))


def _json(data: dict, *, status: int = 200) -> HttpResponse:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    response = HttpResponse(body, status=status, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response


def _client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


def visitor_write_hits(*, address: str, token: object) -> list[Hit]:
    """What a visitor's write is counted against: its address, and its visitor
    when it names one (``conversations.asgi`` counts its writes the same way)."""
    hits = [Hit("visitor-write-ip", address, ADDRESS_LIMITS)]
    if visitor_token_valid(token):
        hits.append(Hit("visitor-write", visitor_token_digest(token), VISITOR_LIMITS))
    return hits


def _limited(request: HttpRequest, *, token: object) -> HttpResponse | None:
    counted, retry_after = counted_in_front(request)
    if not counted:
        retry_after = ratelimit_hits(visitor_write_hits(address=_client_ip(request), token=token))
    return None if retry_after is None else _rate_limited(retry_after)


def _account(request: HttpRequest, widget_key: str) -> WidgetAccount | None:
    account = widget_account(widget_key=widget_key)
    if account is None:
        return None
    return account if account.writes_from(request.headers.get("Origin")) else None


def _body(request: HttpRequest, *, limit: int = BODY_MAX_BYTES) -> dict | HttpResponse:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    # Checked before the body is read, and again after (a chunked body has no length).
    if length > limit or len(request.body) > limit:
        return _json({"error": "too_large"}, status=413)
    try:
        data = json_parse(request.body)
    except InvalidJson:
        data = None
    if not isinstance(data, dict):
        return _json({"error": "invalid_json"}, status=400)
    return data


def _invalid(fields: dict[str, list[str]]) -> HttpResponse:
    return _json({"error": "invalid", "fields": fields}, status=400)


def _rate_limited(retry_after: int) -> HttpResponse:
    response = _json({"error": "rate_limited"}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def _visitor_write(
    request: HttpRequest, widget_key: str, *, needs_token: bool = False
) -> tuple[str | None, WidgetAccount, dict] | HttpResponse:
    """What every visitor write starts with: its limits (429), the account and,
    when ``needs_token``, a well-formed token (404), then the JSON body (413, 400).
    Returns (token, account, body) or the answer to send instead."""
    token = request.headers.get(TOKEN_HEADER)
    if (limited := _limited(request, token=token)) is not None:
        return limited
    account = _account(request, widget_key)
    if account is None or (needs_token and not visitor_token_valid(token)):
        return _json(NOT_FOUND, status=404)
    data = _body(request)
    if isinstance(data, HttpResponse):
        return data
    return token, account, data


@csrf_exempt  # public, cookie-less endpoints: there is no session to forge
@require_POST
def conversation_start(request: HttpRequest, widget_key: str) -> HttpResponse:
    """``POST /widget/v1/{key}/conversations``: the visitor's message into their
    open conversation or a new one; 201 (200 for a ``client_id`` already stored)."""
    started = _visitor_write(request, widget_key)
    if isinstance(started, HttpResponse):
        return started
    token, account, data = started
    errors: dict[str, list[str]] = {}
    body = inputs.body_clean(data.get("body"), errors)
    client_id = inputs.client_id_clean(data.get("client_id"), errors)
    name = inputs.name_clean(data.get("name"), errors)
    email = inputs.email_clean(data.get("email"), errors)
    group_key = inputs.group_clean(data.get("group"), errors)
    if errors:
        return _invalid(errors)
    language = (request.headers.get("Accept-Language") or "")[:2].lower()
    started = services.visitor_conversation_start(
        account_id=account.account_id,
        token=token,
        body=body,
        client_id=client_id,
        group_key=group_key,
        name=name,
        email=email,
        page_url=inputs.page_url_clean(data.get("page_url")),
        language=language if language in ("en", "cs") else "",
        time_zone=inputs.time_zone_clean(data.get("time_zone")),
    )
    return _json(
        {
            "visitor_token": started.visitor_token,
            "conversation": conversation_payload(started.conversation),
            "message": message_payload(started.message),
        },
        status=201 if started.created else 200,
    )


@require_GET
def conversation_current(request: HttpRequest, widget_key: str) -> HttpResponse:
    """``GET /widget/v1/{key}/conversations/current[?after=SEQ]``."""
    account = _account(request, widget_key)
    visitor = (
        selectors.visitor_from_token(account_id=account.account_id, token=request.headers.get(TOKEN_HEADER))
        if account
        else None
    )
    conversation = selectors.visitor_conversation_current(visitor=visitor) if visitor else None
    if conversation is None:
        return _json(NOT_FOUND, status=404)
    after = request.GET.get("after", "0")
    if not (after.isascii() and after.isdigit()) or len(after) > 9:
        return _json({"error": "invalid", "fields": {"after": ["Enter a whole number."]}}, status=400)
    messages = selectors.conversation_messages(conversation_id=conversation.id, after=int(after))
    return _json(
        {"conversation": conversation_payload(conversation), "messages": [message_payload(m) for m in messages]}
    )


@csrf_exempt
@require_POST
def conversation_message(request: HttpRequest, widget_key: str, conversation_id: int) -> HttpResponse:
    """``POST /widget/v1/{key}/conversations/{id}/messages``: 201 message (200 for a repeated ``client_id``)."""
    started = _visitor_write(request, widget_key, needs_token=True)
    if isinstance(started, HttpResponse):
        return started
    token, account, data = started
    errors: dict[str, list[str]] = {}
    body = inputs.body_clean(data.get("body"), errors)
    client_id = inputs.client_id_clean(data.get("client_id"), errors)
    if errors:
        return _invalid(errors)
    try:
        # The token is checked in the query that locks the conversation.
        posted = services.visitor_message_post(
            account_id=account.account_id,
            token_digest=visitor_token_digest(token),
            conversation_id=conversation_id,
            body=body,
            client_id=client_id,
        )
    except services.ConversationNotFound:
        return _json(NOT_FOUND, status=404)
    return _json(message_payload(posted.message), status=201 if posted.created else 200)


@csrf_exempt
@require_POST
def faq_feedback(request: HttpRequest, widget_key: str, conversation_id: int, message_id: int) -> HttpResponse:
    """``POST /widget/v1/{key}/conversations/{id}/messages/{message_id}/feedback``
    ``{"helpful": true}`` or ``{"talk_to_person": true}`` on a bot answer: 200
    with the message (its ``faq.feedback`` set; the first choice is kept)."""
    started = _visitor_write(request, widget_key, needs_token=True)
    if isinstance(started, HttpResponse):
        return started
    token, account, data = started
    chosen = [key for key in ("helpful", "talk_to_person") if data.get(key) is True]
    if len(chosen) != 1:
        return _invalid({"feedback": ['Send {"helpful": true} or {"talk_to_person": true}.']})
    try:
        message = faq_services.faq_feedback_give(
            account_id=account.account_id,
            token_digest=visitor_token_digest(token),
            conversation_id=conversation_id,
            message_id=message_id,
            feedback=chosen[0],
        )
    except (services.ConversationNotFound, faq_services.FeedbackNotFound):
        return _json(NOT_FOUND, status=404)
    return _json(message_payload(message))


@csrf_exempt
@require_http_methods(["PATCH"])
def visitor_patch(request: HttpRequest, widget_key: str) -> HttpResponse:
    """``PATCH /widget/v1/{key}/visitor`` ``{"name"?, "email"?}``."""
    started = _visitor_write(request, widget_key)
    if isinstance(started, HttpResponse):
        return started
    token, account, data = started
    errors: dict[str, list[str]] = {}
    name = inputs.name_clean(data.get("name"), errors) if "name" in data else None
    email = inputs.email_clean(data.get("email"), errors) if "email" in data else None
    if errors:
        return _invalid(errors)
    visitor, issued = services.visitor_update(account_id=account.account_id, token=token, name=name, email=email)
    answer: dict = {"visitor": {"id": visitor.id, "name": visitor.name, "email": visitor.email}}
    if issued is not None:
        answer["visitor_token"] = issued
    return _json(answer)


@csrf_exempt
@require_POST
def offline_form(request: HttpRequest, widget_key: str) -> HttpResponse:
    """``POST /widget/v1/{key}/messages`` (the offline form of older widget
    scripts): starts a conversation; 201 ``{"id"}`` (the conversation's)."""
    retry_after = ratelimit_hit(scope="widget-message", ident=_client_ip(request), limits=OFFLINE_FORM_LIMITS)
    if retry_after is not None:
        return _rate_limited(retry_after)
    account = _account(request, widget_key)
    if account is None:
        return _json(NOT_FOUND, status=404)
    data = _body(request, limit=OFFLINE_FORM_MAX_BYTES)
    if isinstance(data, HttpResponse):
        return data
    form = OfflineForm(data=data)
    if not form.is_valid():
        return _invalid(form_errors(form))
    errors: dict[str, list[str]] = {}
    body = inputs.body_clean(form.cleaned_data["message"], errors)
    name = inputs.name_clean(form.cleaned_data["name"], errors)
    if errors:
        return _invalid({"message" if key == "body" else key: value for key, value in errors.items()})
    conversation = services.offline_form_submit(
        account_id=account.account_id,
        name=name,
        email=form.cleaned_data["email"],
        body=body,
        group_key=form.cleaned_data["group"] or None,
        page_url=form.cleaned_data["page_url"],
    )
    return _json({"id": conversation.id}, status=201)
