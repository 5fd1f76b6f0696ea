"""A client whose clock is hours off changes nothing: every timestamp the
service records or reasons with is the server's."""

from datetime import timedelta
from email.utils import format_datetime

import pytest
from django.utils import timezone

from accounts.models import Operator
from presence.models import StatusEvent
from presence.store import OperatorRef
from tests.drills.conftest import GRACE_SECONDS, TTL_SECONDS, http, is_hello, wait_until
from tests.factories import make_account, make_operator, make_token

# Real processes and a Redis of the drill's own: not part of the embedded-mode pass.
pytestmark = pytest.mark.production_only

# A generous bound for "now": the server and this test share one machine clock.
SLACK_SECONDS = 5
HOURS_OFF = [
    ("hours_behind", "1999-01-01T00:00:00Z", timedelta(hours=-7)),
    ("hours_ahead", "2099-12-31T23:59:59Z", timedelta(hours=9)),
]


def assert_now(moment: float, *, what: str) -> None:
    now = timezone.now().timestamp()
    assert now - SLACK_SECONDS <= moment <= now + SLACK_SECONDS, f"{what} is {moment - now:+.0f} s from now"


def test_an_operator_app_with_a_wrong_clock_records_only_server_time(drill, sockets):
    web = drill.start(workers=0, beats=0).web
    account = make_account(stale_after_seconds=GRACE_SECONDS)
    agent, phone_user = make_operator(account=account), make_operator(account=account)
    store, ref = drill.store(), OperatorRef(account.id, agent.id)
    for label, bogus, offset in HOURS_OFF:
        app = sockets.operator(web, make_token(agent, device=label), heartbeat={"type": "heartbeat", "at": bogus})
        app.wait_for(is_hello, timeout=15, what="the app's hello")
        app.wait_for(lambda m: m.get("type") == "heartbeat_ack", timeout=10, what="a heartbeat with a bogus time")
        for status in ("online", "offline"):
            app.send({"type": "set_status", "status": status, "at": bogus, "sent_at": bogus, "time": bogus})
            event = wait_until(
                lambda status=status: StatusEvent.objects.filter(operator=agent, new=status).order_by("-id").first(),
                timeout=10,
                what=f"the {status} switch stored",
            )
            assert_now(event.at.timestamp(), what=f"StatusEvent.at of a switch sent with {label}")
            StatusEvent.objects.filter(id=event.id).delete()  # the next switch must make its own row
        assert_now(Operator.objects.get(id=agent.id).status_changed_at.timestamp(), what="status_changed_at")
        app.wait_for(lambda m: m.get("type") == "heartbeat_ack", timeout=10, what="another heartbeat")
        connections = store.connections(ref=ref, now=timezone.now().timestamp(), ttl=TTL_SECONDS)
        assert connections
        for connection in connections:
            assert_now(connection.last_heartbeat, what="a connection's last heartbeat")
        assert_now(
            store.present_until_map(account_id=account.id)[agent.id] - GRACE_SECONDS, what="present_until - grace"
        )
        app.close()

        # A phone on the REST API, its Date header hours off.
        headers = {
            "Authorization": f"Token {make_token(phone_user, device=label, is_mobile=True)}",
            "Date": format_datetime(timezone.now() + offset, usegmt=True),
        }
        for status in ("online", "offline"):
            reply = http(web, "PUT", "/api/v1/me/status", body={"status": status, "at": bogus}, headers=headers)
            assert reply.status == 200, reply
            event = StatusEvent.objects.filter(operator=phone_user, new=status).order_by("-id").first()
            assert_now(event.at.timestamp(), what=f"StatusEvent.at of a REST switch with {label}")
            assert_now(
                Operator.objects.get(id=phone_user.id).status_changed_at.timestamp(), what="REST status_changed_at"
            )
            StatusEvent.objects.filter(id=event.id).delete()
        reply = http(web, "POST", "/api/v1/me/heartbeat", body={"device": label, "at": bogus}, headers=headers)
        assert reply.status == 200, reply
        phone_until = store.present_until_map(account_id=account.id)[phone_user.id]
        assert_now(phone_until - GRACE_SECONDS, what="the phone's present_until - grace")
