"""Small helpers shared by the widget tests."""

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
