"""Helpers for the conversation tests: an account whose box is online or
offline, visitors who write, and time that only moves when told."""

import pytest
from django.utils import timezone

from accounts.models import Status
from conversations import services
from conversations.models import Conversation
from presence import services as presence
from tests.factories import make_account, make_operator
from tests.presence.conftest import COMMITTED_APPS, clock, published, running_store  # noqa: F401 (fixtures)

# Real commits: services publish and set timers in ``on_commit``.
conversations_db = pytest.mark.django_db(transaction=True, available_apps=[*COMMITTED_APPS, "conversations"])


def go_online(operator) -> None:
    presence.presence_heartbeat(operator=operator, conn_id=f"c{operator.id}", device="s:laptop")
    presence.operator_set_status(operator=operator, status=Status.ONLINE, source="dashboard", device="s:laptop")


@pytest.fixture
def account():
    return make_account(busy_after_seconds=45)


@pytest.fixture
def agent(account):
    return make_operator(account=account)


def visitor_writes(account, body: str = "Hello?", *, token=None, client_id: str | None = None, **fields):
    """A visitor's message through the service the widget endpoint calls."""
    return services.visitor_conversation_start(
        account_id=account.id,
        token=token,
        body=body,
        client_id=client_id or f"c-{timezone.now().timestamp()}-{body}",
        **fields,
    )


def bodies(conversation: Conversation) -> list[tuple[str, str]]:
    return list(conversation.messages.order_by("seq").values_list("kind", "body"))
