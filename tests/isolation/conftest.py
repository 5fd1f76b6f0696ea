"""Two tenants for the isolation walk: account A (the caller) and account B (the target).

Every piece of B's data carries a string found nowhere else, so a response of A
can be searched for it; ``tenant_state`` reads back everything B owns (database
rows and presence store), so a walk can prove nothing of B's changed.
"""

import io
from dataclasses import dataclass, field

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db.models import Q
from django.utils import timezone
from PIL import Image

from accounts.models import Account, ApiToken, Operator, Status
from accounts.services import operator_update
from conversations import services as conversation_services
from conversations.faq import services as faq_services
from conversations.models import Conversation, FaqAnswer, FaqEntry, FaqMiss, Message, Visitor
from groups.models import Group, Membership
from hours.models import OpeningHours
from hours.services import opening_hours_set
from presence import events
from presence.models import ChatBoxEvent, Source, StatusEvent
from presence.services import chat_box_refresh, operator_set_status, presence_heartbeat
from presence.store import OperatorRef, get_store
from tests.factories import make_account, make_group, make_operator, make_token, owner_of
from widget.selectors import widget_account_forget

WEEKLY = {"monday": [{"from": "09:00", "to": "17:00"}], "friday": [{"from": "22:00", "to": "06:00"}]}


@dataclass
class Tenant:
    """One account with an owner, an agent in a group, opening hours (stored but
    off, so the agent alone moves the chat box), an audit trail, an API token per
    operator, a visitor's offline-form message, a visitor's conversation with
    the group that the agent answered, and an avatar."""

    account: Account
    owner: Operator
    agent: Operator
    group: Group
    owner_token: str
    agent_token: str
    conversation: Conversation
    visitor_token: str
    faq_entry: FaqEntry
    bot_message: Message
    # Strings that belong to this tenant only: none may show in the other's answers.
    private: list[str] = field(default_factory=list)

    @property
    def operator_ids(self) -> set[int]:
        return set(Operator.objects.filter(account=self.account).values_list("id", flat=True))

    @property
    def visitor_ids(self) -> set[int]:
        return set(Visitor.objects.filter(account=self.account).values_list("id", flat=True))

    @property
    def conversation_ids(self) -> set[int]:
        return set(Conversation.objects.filter(account=self.account).values_list("id", flat=True))

    def channel_groups(self) -> set[str]:
        """Every channel-layer group name of this tenant."""
        names = {events.account_group(self.account.id), events.widget_group(self.account.id)}
        return names | {events.operator_group(op_id) for op_id in self.operator_ids}


def _png() -> ContentFile:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 40, 40)).save(buffer, format="PNG")
    return ContentFile(buffer.getvalue(), name="avatar.png")


def make_tenant(*, tag: str, name: str) -> Tenant:
    """``tag`` makes every string of the tenant unique (lowercase letters only)."""
    account = make_account(name=f"{name} {tag.title()} Trading", allowed_origins=[f"https://shop.{tag}.example"])
    owner = owner_of(account)
    operator_update(
        operator=owner, display_name=f"Quintus {tag.title()}", email=f"quintus@{tag}.example", avatar=_png()
    )
    agent = make_operator(account=account, name=f"Xaver {tag.title()}")
    operator_update(operator=agent, email=f"xaver@{tag}.example")
    group = make_group(account=account, key=f"{tag}-desk", members=[agent])
    Group.objects.filter(id=group.id).update(name=f"{tag.title()} Desk")
    group.refresh_from_db()
    opening_hours_set(account=account, group=None, enabled=False, timezone="UTC", weekly=WEEKLY, exceptions=[])
    opening_hours_set(account=account, group=group, enabled=False, timezone="UTC", weekly=WEEKLY, exceptions=[])
    presence_heartbeat(operator=agent, conn_id=f"{tag}-conn", device=f"s:{tag}-laptop")
    operator_set_status(operator=agent, status=Status.ONLINE, source=Source.DASHBOARD, device=f"{tag}-laptop-tag")
    ChatBoxEvent.objects.create(
        account=account,
        group_key=group.key,
        old=Status.OFFLINE,
        new=Status.ONLINE,
        reason="operators_online",
        version=1,
    )
    # The offline form of older widget scripts: a conversation of its own.
    conversation_services.offline_form_submit(
        account_id=account.id,
        name=f"Yolanda {tag.title()}",
        email=f"yolanda@visitor-{tag}.example",
        body=f"Secret order {tag} 4711",
        group_key=group.key,
    )
    started = conversation_services.visitor_conversation_start(
        account_id=account.id,
        token=None,
        body=f"Whisper {tag} 2718",
        client_id=f"{tag}-first",
        group_key=group.key,
        name=f"Zeno {tag.title()}",
        email=f"zeno@visitor-{tag}.example",
    )
    conversation_services.operator_message_post(
        conversation_id=started.conversation.id, operator=agent, body=f"Answer {tag} 3141", client_id=f"{tag}-reply"
    )
    # A FAQ entry of the group, a bot answer to a visitor, and a question it could not answer.
    faq_entry = faq_services.faq_entry_create(
        account=account,
        question=f"Riddle {tag} opening hours?",
        phrasings=[f"When is {tag} open?"],
        answer=f"Oracle {tag} 1618",
        language="en",
        group_id=group.id,
    )
    asked = conversation_services.visitor_conversation_start(
        account_id=account.id,
        token=None,
        body=f"riddle {tag} opening hours",
        client_id=f"{tag}-faq",
        group_key=group.key,
    )
    bot_message = faq_services.faq_bot_answer(conversation_id=asked.conversation.id, from_seq=1, upto_seq=1)
    assert bot_message is not None
    faq_services.faq_bot_answer(conversation_id=asked.conversation.id, from_seq=1, upto_seq=1)
    conversation_services.visitor_message_post(
        account_id=account.id,
        visitor_id=asked.conversation.visitor_id,
        conversation_id=asked.conversation.id,
        body=f"Mystery {tag} question nobody answers",
        client_id=f"{tag}-miss",
    )
    faq_services.faq_bot_answer(conversation_id=asked.conversation.id, from_seq=3, upto_seq=3)
    owner_token = make_token(owner, device=f"{tag}-owner-phone")
    agent_token = make_token(agent, device=f"{tag}-agent-phone", is_mobile=True)
    # The snapshot exists before the walk, so a read of it changes nothing.
    chat_box_refresh(account_id=account.id)
    owner.refresh_from_db()
    agent.refresh_from_db()
    private = [
        account.name,
        account.widget_key,
        f"shop.{tag}.example",
        owner.display_name,
        owner.email,
        owner.avatar.name.rsplit("/", 1)[-1],
        agent.display_name,
        agent.email,
        group.key,
        group.name,
        f"{tag}-laptop",
        f"{tag}-owner-phone",
        f"{tag}-agent-phone",
        f"Yolanda {tag.title()}",
        f"visitor-{tag}.example",
        f"Secret order {tag}",
        f"Zeno {tag.title()}",
        f"Whisper {tag}",
        f"Answer {tag}",
        f"Riddle {tag}",
        f"Oracle {tag}",
        f"Mystery {tag}",
    ]
    return Tenant(
        account,
        owner,
        agent,
        group,
        owner_token,
        agent_token,
        started.conversation,
        started.visitor_token,
        faq_entry,
        bot_message,
        private,
    )


@dataclass
class World:
    a: Tenant
    b: Tenant

    def ids(self) -> dict[str, object]:
        """What probe paths are filled with."""
        return {
            "a_agent": self.a.agent.id,
            "a_group": self.a.group.id,
            "a_key": self.a.group.key,
            "a_widget": self.a.account.widget_key,
            "b_account": self.b.account.id,
            "b_owner": self.b.owner.id,
            "b_owner_email": self.b.owner.email,
            "b_agent": self.b.agent.id,
            "b_group": self.b.group.id,
            "b_key": self.b.group.key,
            "b_widget": self.b.account.widget_key,
            "b_avatar": self.b.owner.avatar.name,
            "a_conversation": self.a.conversation.id,
            "b_conversation": self.b.conversation.id,
            "a_visitor_token": self.a.visitor_token,
            "b_visitor_token": self.b.visitor_token,
            "a_faq": self.a.faq_entry.id,
            "b_faq": self.b.faq_entry.id,
            "b_bot_message": self.b.bot_message.id,
            "b_bot_conversation": self.b.bot_message.conversation_id,
        }


def build_world() -> World:
    return World(a=make_tenant(tag="alphaqua", name="Alpha"), b=make_tenant(tag="bravozulu", name="Bravo"))


def world_cleanup(world: World) -> None:
    for tenant in (world.a, world.b):
        tenant.owner.avatar.storage.delete(tenant.owner.avatar.name)


def tenant_state(tenant: Tenant) -> dict:
    """Everything the tenant owns, read back: rows that belong to it or point at it,
    and its presence and snapshot in the store."""
    account = tenant.account
    store = get_store()
    operator_ids = sorted(Operator.objects.filter(account=account).values_list("id", flat=True))
    now = timezone.now().timestamp()

    def rows(queryset) -> list[dict]:
        return list(queryset.order_by("pk").values())

    return {
        "account": rows(Account.objects.filter(id=account.id)),
        "operators": rows(Operator.objects.filter(account=account)),
        "groups": rows(Group.objects.filter(account=account)),
        "memberships": rows(Membership.objects.filter(Q(group__account=account) | Q(operator__account=account))),
        "hours": rows(OpeningHours.objects.filter(Q(account=account) | Q(group__account=account))),
        "status_events": rows(StatusEvent.objects.filter(Q(account=account) | Q(operator__account=account))),
        "chat_box_events": rows(ChatBoxEvent.objects.filter(account=account)),
        "tokens": rows(ApiToken.objects.filter(operator__account=account)),
        "visitors": rows(Visitor.objects.filter(account=account)),
        "conversations": rows(
            Conversation.objects.filter(
                Q(account=account)
                | Q(group__account=account)
                | Q(visitor__account=account)
                | Q(assignee__account=account)
            )
        ),
        "conversation_messages": rows(
            Message.objects.filter(Q(conversation__account=account) | Q(operator__account=account))
        ),
        "faq_entries": rows(FaqEntry.objects.filter(Q(account=account) | Q(group__account=account))),
        "faq_answers": rows(FaqAnswer.objects.filter(Q(account=account) | Q(conversation__account=account))),
        "faq_misses": rows(FaqMiss.objects.filter(account=account)),
        "present_until": store.present_until_map(account_id=account.id),
        "connections": {
            op_id: store.connections(ref=OperatorRef(account.id, op_id), now=now, ttl=10**6) for op_id in operator_ids
        },
        "snapshot": store.snapshot_json(account_id=account.id),
    }


@pytest.fixture(autouse=True)
def fresh_counters(clean_store):
    """Rate-limit counters (log-in, widget) and memoised widget accounts start empty.

    In production mode they live under the test's Redis prefix, which
    ``clean_store`` empties; the embedded mode's memory cache is cleared here."""
    if settings.EMBEDDED:
        cache.clear()
    widget_account_forget()
    yield
    widget_account_forget()
