import pytest
from django.urls import reverse

from accounts.models import Account, ApiToken, Operator
from conversations.models import Conversation, Visitor
from conversations.services import visitor_conversation_start
from groups.models import Group
from hours.models import OpeningHours
from presence.models import ChatBoxEvent, StatusEvent
from presence.services import operator_set_status
from tests.factories import make_account, make_group, make_operator, make_token

MODELS = [Account, Operator, ApiToken, StatusEvent, ChatBoxEvent, Group, OpeningHours, Conversation, Visitor]


@pytest.fixture
def staff_client(client, db):
    staff = Operator.objects.create_superuser("root@example.com", "root-password-1", display_name="Root")
    client.force_login(staff)
    return client


@pytest.fixture
def populated(db):
    account = make_account()
    operator = make_operator(account=account, status="online")
    make_group(account=account, key="sales", members=[operator])
    make_token(operator)
    operator_set_status(operator=operator, status="offline", source="dashboard")
    visitor_conversation_start(
        account_id=account.id, token=None, body="Hello", client_id="c1", name="Visitor", email="v@example.com"
    )
    return account, operator


@pytest.mark.parametrize("model", MODELS, ids=[m.__name__ for m in MODELS])
def test_every_model_has_a_searchable_filterable_admin_list(staff_client, populated, model):
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    assert staff_client.get(url).status_code == 200
    assert staff_client.get(url, {"q": "example"}).status_code == 200


def test_status_events_are_read_only_in_the_admin(staff_client, populated):
    event = StatusEvent.objects.first()
    change = reverse("admin:presence_statusevent_change", args=[event.id])
    page = staff_client.get(change)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert staff_client.get(reverse("admin:presence_statusevent_add")).status_code == 403
    assert staff_client.post(reverse("admin:presence_statusevent_delete", args=[event.id])).status_code == 403


def test_the_admin_action_switches_operators_offline_with_source_admin(staff_client, populated):
    account, _operator = populated
    online = make_operator(account=account, status="online")
    response = staff_client.post(
        reverse("admin:accounts_operator_changelist"),
        {"action": "switch_offline", "_selected_action": [online.id]},
    )
    assert response.status_code == 302
    online.refresh_from_db()
    assert online.status == "offline"
    assert StatusEvent.objects.filter(operator=online, source="admin", new="offline").count() == 1


def test_the_group_admin_shows_memberships_and_schedule_inline(staff_client, populated):
    group = Group.objects.get()
    page = staff_client.get(reverse("admin:groups_group_change", args=[group.id]))
    assert page.status_code == 200
    assert b"memberships-TOTAL_FORMS" in page.content
    assert b"opening_hours-TOTAL_FORMS" in page.content
