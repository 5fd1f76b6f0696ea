"""The signals the lower apps' services send must reach presence (and
conversations, for the busy delay): the system check ``accounts.E001`` fails
start-up when one has no receiver."""

import pytest
from django.core import checks

from accounts import signals
from accounts.checks import signals_have_receivers
from conversations import receivers as conversation_receivers
from presence import receivers

# Each signal with the receiver ``presence.receivers.connect`` (or ``conversations.receivers.connect``)
# gives it, and its dispatch_uid there.
RECEIVERS = {
    "chat_box_inputs_changed": (receivers.on_chat_box_inputs_changed, "presence.chat_box_inputs_changed"),
    "operator_access_ended": (receivers.on_operator_access_ended, "presence.operator_access_ended"),
    "account_deleted": (receivers.on_account_deleted, "presence.account_deleted"),
    "busy_delay_shortened": (
        conversation_receivers.on_busy_delay_shortened,
        "conversations.busy_delay_shortened",
    ),
}


def errors() -> list[checks.CheckMessage]:
    return [message for message in checks.run_checks() if message.id == "accounts.E001"]


@pytest.mark.django_db  # the model checks ask the database what it supports
def test_the_check_passes_with_presence_installed():
    # It should find a receiver for every signal.
    assert set(RECEIVERS) == set(signals.ALL)
    assert signals_have_receivers() == []
    assert errors() == []


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(RECEIVERS))
def test_the_check_fails_when_a_signal_has_no_receiver(name):
    signal = signals.ALL[name]
    receiver, dispatch_uid = RECEIVERS[name]
    assert signal.disconnect(dispatch_uid=dispatch_uid)
    try:
        reported = errors()
    finally:
        signal.connect(receiver, dispatch_uid=dispatch_uid)

    # It should report the one signal nobody receives, as an error that stops start-up.
    assert len(reported) == 1
    assert reported[0].level == checks.ERROR
    assert f"accounts.signals.{name}" in reported[0].msg
    assert signals_have_receivers() == []  # reconnected: as it was


def presence_receivers() -> dict[str, int]:
    """Signal name → how many receivers it has under its receiving app's dispatch_uid."""
    return {
        name: sum(1 for entry in signals.ALL[name].receivers if entry[0][0] == dispatch_uid)
        for name, (_receiver, dispatch_uid) in RECEIVERS.items()
    }


def test_connecting_the_receivers_again_adds_no_second_one():
    receivers.connect()
    conversation_receivers.connect()

    # It should connect each receiver once, whatever calls connect again.
    assert presence_receivers() == dict.fromkeys(RECEIVERS, 1)
