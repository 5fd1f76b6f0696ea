from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import Operator
from accounts.services import _save_unique, operator_update
from groups.models import Group
from groups.services import _save as group_save
from presence.models import StatusEvent
from presence.selectors import operator_connections
from presence.services import operator_set_status, presence_heartbeat, presence_sweep
from tests.factories import make_account, make_group, make_operator


@pytest.mark.django_db
def test_deactivating_an_operator_ends_every_device_and_switches_them_offline(django_capture_on_commit_callbacks):
    account = make_account()
    operator = make_operator(account=account, status="online")
    with django_capture_on_commit_callbacks(execute=True):
        presence_heartbeat(operator=operator, conn_id="phone", device="t:1")
        presence_heartbeat(operator=operator, conn_id="laptop", device="s:abc")
        operator_update(operator=operator, is_active=False)
    operator.refresh_from_db()
    assert operator.status == "offline"
    assert operator_connections(operator=operator) == []
    assert StatusEvent.objects.get(operator=operator).source == "admin"


@pytest.mark.django_db
def test_an_absent_operator_forced_online_is_swept_offline_at_the_next_sweep(django_capture_on_commit_callbacks):
    account = make_account()
    operator = make_operator(account=account)
    with django_capture_on_commit_callbacks(execute=True):
        operator_set_status(operator=operator, status="online", source="admin")
    with time_machine.travel(timezone.now() + timedelta(seconds=1), tick=False):
        assert presence_sweep() == 1
    operator.refresh_from_db()
    assert operator.status == "offline"
    assert list(StatusEvent.objects.filter(operator=operator).values_list("source", flat=True)) == [
        "stale_sweep",
        "admin",
    ]


@pytest.mark.django_db
def test_a_present_operator_forced_online_stays_online_through_the_sweep(django_capture_on_commit_callbacks):
    account = make_account()
    operator = make_operator(account=account)
    with django_capture_on_commit_callbacks(execute=True):
        presence_heartbeat(operator=operator, conn_id="laptop", device="s:abc")
        operator_set_status(operator=operator, status="online", source="admin")
    with time_machine.travel(timezone.now() + timedelta(seconds=60), tick=False):
        assert presence_sweep() == 0
    operator.refresh_from_db()
    assert operator.status == "online"


@pytest.mark.django_db
def test_an_e_mail_taken_by_a_concurrent_writer_is_a_field_error_not_a_crash():
    account = make_account()
    taken = make_operator(account=account)
    twin = Operator(account=account, email=taken.email, display_name="Twin")
    with pytest.raises(ValidationError) as error:
        _save_unique(twin, field="email")
    assert "email" in error.value.message_dict
    assert Operator.objects.filter(email=taken.email).count() == 1


@pytest.mark.django_db
def test_a_group_key_taken_by_a_concurrent_writer_is_a_field_error_not_a_crash():
    account = make_account()
    make_group(account=account, key="sales")
    with pytest.raises(ValidationError) as error:
        group_save(Group(account=account, key="sales", name="Again"))
    assert "key" in error.value.message_dict
