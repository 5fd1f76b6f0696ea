"""Small helpers shared by the widget tests."""

from presence.models import Operator
from presence.services import presence_heartbeat


def make_present(operator: Operator, *, conn_id: str = "c1") -> None:
    """One live connection for ``operator``: present until its TTL or grace runs out."""
    presence_heartbeat(operator=operator, conn_id=conn_id, device=f"s:{conn_id}", grace=120)


def status_url(account, group: str | None = None) -> str:
    url = f"/widget/v1/{account.widget_key}/status"
    return f"{url}?group={group}" if group else url


def messages_url(account) -> str:
    return f"/widget/v1/{account.widget_key}/messages"
