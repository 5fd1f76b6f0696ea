"""Small helpers shared by the widget tests."""

from channels.testing import HttpCommunicator

from accounts.models import Account, Operator, Status
from hours.services import opening_hours_set
from presence.services import presence_heartbeat
from tests.factories import make_account, make_operator


def make_present(operator: Operator, *, conn_id: str = "c1") -> None:
    """One live connection for ``operator``: present until its TTL or grace runs out."""
    presence_heartbeat(operator=operator, conn_id=conn_id, device=f"s:{conn_id}")


def status_url(account, group: str | None = None) -> str:
    url = f"/widget/v1/{account.widget_key}/status"
    return f"{url}?group={group}" if group else url


def messages_url(account) -> str:
    return f"/widget/v1/{account.widget_key}/messages"


def make_open_monday_nine_to_five_with_someone_online() -> Account:
    """An account open on Mondays 09:00–17:00 UTC with an online, present operator:
    its box is closed before nine and online from nine."""
    account = make_account()
    operator = make_operator(account=account, status=Status.ONLINE)
    opening_hours_set(
        account=account,
        enabled=True,
        timezone="UTC",
        weekly={"monday": [{"from": "09:00", "to": "17:00"}]},
        exceptions=[],
    )
    make_present(operator)
    return account


# --- status reads through an ASGI app, for comparing the fast path with Django ---

ORIGIN = (b"origin", b"https://shop.example")
HOST = (b"host", b"127.0.0.1:8000")
# Headers only Django's page machinery adds; meaningless for a JSON read.
DJANGO_ONLY = {b"x-frame-options", b"content-language"}


async def asgi_get(app, path: str, *headers: tuple[bytes, bytes]) -> dict:
    """GET through ``app`` with a host and an Origin; repeated headers joined."""
    return await asgi_request(app, "GET", path, [HOST, ORIGIN, *headers])


async def asgi_request(
    app, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b"", *, address: str | None = None
) -> dict:
    """One request through ``app`` (a body gets its Content-Length, as Daphne
    passes it on; ``address``: the client's): status, body, and the headers
    by lower-case name, repeated ones joined."""
    if body:
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    communicator = HttpCommunicator(app, method, path, body=body, headers=headers)
    if address is not None:
        communicator.scope["client"] = (address, 50000)
    response = await communicator.get_response(timeout=5)
    await communicator.wait()
    headers_map: dict[bytes, str] = {}
    for name, value in response["headers"]:
        key = name.lower()
        headers_map[key] = f"{headers_map[key]}, {value.decode()}" if key in headers_map else value.decode()
    return {"status": response["status"], "body": response["body"], "headers": headers_map}


def comparable(response: dict) -> dict:
    headers = {name: value for name, value in response["headers"].items() if name not in DJANGO_ONLY}
    # Django's LocaleMiddleware varies on Accept-Language and, as the session is looked
    # at, SessionMiddleware on Cookie; the answer depends on neither.
    vary = {part.strip().lower() for part in headers.pop(b"vary", "").split(",") if part.strip()}
    return {**response, "headers": headers, "vary": vary - {"accept-language", "cookie"}}
