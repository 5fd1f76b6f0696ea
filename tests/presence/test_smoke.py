import pytest

from presence.selectors import chat_box_snapshot
from presence.services import chat_box_refresh
from tests.factories import make_account


@pytest.mark.django_db
def test_a_new_account_has_an_offline_chat_box():
    account = make_account()
    chat_box_refresh(account_id=account.id)
    snapshot = chat_box_snapshot(account_id=account.id)
    assert snapshot["status"] == "offline"
    assert snapshot["reason"] == "no_operator_online"
