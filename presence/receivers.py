"""Presence's answers to ``accounts.signals``: one service call each.

The lower apps' services send these after every write that moves a chat box or
ends an operator's access (see ``accounts.signals`` for why a signal)."""

from accounts.models import Operator, Status
from accounts.signals import account_deleted, chat_box_inputs_changed, operator_access_ended
from presence.models import Source
from presence.services.chatbox import chat_box_refresh_on_commit
from presence.services.connections import account_presence_forget, operator_devices_end
from presence.services.status import operator_set_status


def on_chat_box_inputs_changed(sender: object, *, account_id: int, **kwargs: object) -> None:
    chat_box_refresh_on_commit(account_id=account_id)


def on_operator_access_ended(
    sender: object, *, operator: Operator, switch_offline: bool, keep_device: str | None = None, **kwargs: object
) -> None:
    operator_devices_end(operator=operator, keep_device=keep_device)
    if switch_offline:
        operator_set_status(operator=operator, status=Status.OFFLINE, source=Source.ADMIN)
    chat_box_refresh_on_commit(account_id=operator.account_id)


def on_account_deleted(sender: object, *, account_id: int, **kwargs: object) -> None:
    account_presence_forget(account_id=account_id)


def connect() -> None:
    chat_box_inputs_changed.connect(on_chat_box_inputs_changed, dispatch_uid="presence.chat_box_inputs_changed")
    operator_access_ended.connect(on_operator_access_ended, dispatch_uid="presence.operator_access_ended")
    account_deleted.connect(on_account_deleted, dispatch_uid="presence.account_deleted")
