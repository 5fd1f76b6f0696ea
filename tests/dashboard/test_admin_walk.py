"""The admin walk: every model registered in the Django admin, driven through its
real pages by site staff (a superuser of no account).

Each registered model has a ``Case`` below: which of add, change and delete its
admin offers, and the scenarios that prove its hooks go through the services
(the widget status and the open sockets follow, no owner rule can be broken).
A model registered later without a case fails the walk (its parameter says
NO-CASE) and ``test_it_has_a_case_for_every_model_in_the_admin``.

Forms are filled as a browser would: the page is fetched, every field it
renders is posted back with its value, and only the fields a scenario names are
changed. Chat box refreshes run after commit; each admin request runs its
on-commit callbacks as the request's commit would.
"""

import inspect
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib import admin, messages
from django.contrib.auth.models import Group as AuthGroup
from django.contrib.auth.models import Permission
from django.db import models
from django.test import Client
from django.urls import reverse

from accounts.auth import token_create, token_device_tag
from accounts.models import Account, ApiToken, Operator, Status
from chatstatus.asgi import router
from conversations.faq.selectors import faq_match
from conversations.faq.services import faq_entry_create
from conversations.models import Conversation, FaqEntry, Visitor
from conversations.services import visitor_conversation_start
from groups.models import Group, Membership
from hours.models import OpeningHours
from hours.services import opening_hours_set
from presence.consumers import CLOSE_LOGGED_OUT
from presence.models import ChatBoxEvent, Source, StatusEvent
from presence.selectors import operators_present
from presence.services import operator_set_status, presence_heartbeat
from presence.store import get_store
from tests.factories import PASSWORD, make_account, make_group, make_operator, owner_of
from tests.presence.conftest import Socket, token_headers
from tests.widget.helpers import make_present, status_url
from widget.selectors import widget_account_forget

CLOSED_ALL_WEEK: dict = {}  # enabled hours with no interval: closed whatever the clock says


# --- filling the admin's forms as a browser does -------------------------------------------


class _FormFields(HTMLParser):
    """The (name, value) pairs a browser posts from the admin's change form:
    every named input, select and textarea as rendered (not the log-out form,
    not the empty templates of inline rows, not the buttons)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: list[tuple[str, str]] = []
        self._in_form = False
        self._select: tuple[str, bool] | None = None
        self._options: list[tuple[str, bool]] = []
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self._in_form = (a.get("method") or "").lower() == "post" and (a.get("id") or "").endswith("_form")
            return
        name = a.get("name")
        if not self._in_form:
            return
        if tag == "input" and name:
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields.append((name, a.get("value") or "on"))
                return
            self.fields.append((name, a.get("value") or ""))
        elif tag == "select" and name:
            self._select, self._options = (name, "multiple" in a), []
        elif tag == "option" and self._select is not None:
            self._options.append((a.get("value") or "", "selected" in a))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "select" and self._select is not None:
            name, multiple = self._select
            chosen = [value for value, selected in self._options if selected]
            if not chosen and not multiple and self._options:
                chosen = [self._options[0][0]]
            self.fields += [(name, value) for value in chosen]
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            # A browser drops the one newline that follows the opening tag.
            self.fields.append((self._textarea, "".join(self._text).removeprefix("\n")))
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)


def form_values(html: str) -> dict[str, str | list[str]]:
    parser = _FormFields()
    parser.feed(html)
    values: dict[str, str | list[str]] = {}
    for name, value in parser.fields:
        if "__prefix__" in name:
            continue
        if name in values:
            previous = values[name]
            values[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            values[name] = value
    return values


def add_inline_rows(data: dict, prefix: str, rows: list[dict[str, object]]) -> dict:
    """Fill the extra rows an inline's "Add another" would show."""
    total = int(data[f"{prefix}-TOTAL_FORMS"])
    for offset, row in enumerate(rows):
        for name, value in row.items():
            data[f"{prefix}-{total + offset}-{name}"] = str(value)
    data[f"{prefix}-TOTAL_FORMS"] = str(total + len(rows))
    return data


def inline_row_of(data: dict, prefix: str, name: str, value: object) -> int:
    """The index of the inline row whose ``name`` field holds ``value``."""
    for index in range(int(data[f"{prefix}-TOTAL_FORMS"])):
        if data.get(f"{prefix}-{index}-{name}") == str(value):
            return index
    raise LookupError(f"no {prefix} row with {name}={value}")


# --- what a page says ------------------------------------------------------------------------


def refusals(response) -> list[str]:
    """What a refused request shows: error messages (a service said no) or the
    form's own errors (the page comes back with them)."""
    found = [str(m) for m in messages.get_messages(response.wsgi_request) if m.level == messages.ERROR]
    context = getattr(response, "context", None)
    # A model's change form has an "adminform"; UserAdmin's password page an "adminForm".
    adminform = context and (context.get("adminform") or context.get("adminForm"))
    if adminform:
        found += [str(error) for errors in adminform.form.errors.values() for error in errors]
        for inline in context.get("inline_admin_formsets", []):
            formset = inline.formset
            found += [str(error) for errors in formset.errors for values in errors.values() for error in values]
            found += [str(error) for error in formset.non_form_errors()]
    return found


def assert_done(response) -> None:
    """The admin saved or deleted and redirected, with no error shown."""
    assert (response.status_code, refusals(response)) == (302, [])


def rows() -> dict[str, list[dict]]:
    """Every row of every model the admin manages (and memberships), by model."""
    managed = [*admin.site._registry, Membership]
    return {model._meta.label: list(model.objects.order_by("pk").values()) for model in managed}


def presence_of(*accounts: Account) -> dict[int, tuple[str | None, set[int]]]:
    """What the presence store keeps per account: the snapshot and who is present."""
    store = get_store()
    return {
        account.id: (store.snapshot_json(account_id=account.id), set(operators_present(account_id=account.id)))
        for account in accounts
    }


# --- the walker ------------------------------------------------------------------------------


@dataclass
class Walk:
    """Site staff in the admin (``client``) and a visitor reading widget statuses."""

    client: Client
    capture: Callable
    visitor: Client = field(default_factory=Client)

    # Addresses

    @staticmethod
    def url(model: type[models.Model], view: str, *args: object) -> str:
        return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)

    def change_url(self, obj: models.Model) -> str:
        return self.url(type(obj), "change", obj.pk)

    # Requests

    @contextmanager
    def committed(self) -> Iterator[None]:
        """Run what the block commits the way a commit would: its on-commit callbacks after it."""
        with self.capture(execute=True):
            yield

    def form(self, url: str) -> dict[str, str | list[str]]:
        page = self.client.get(url)
        assert page.status_code == 200, f"GET {url}: {page.status_code}"
        return form_values(page.content.decode())

    def post(self, url: str, data: dict):
        with self.committed():
            return self.client.post(url, data)

    def submit(self, url: str, changes: dict[str, object] | None = None, *, data: dict | None = None):
        """Post the form of ``url`` back with ``changes`` (None: untick, or leave out)."""
        data = self.form(url) if data is None else data
        for name, value in (changes or {}).items():
            if value is None:
                data.pop(name, None)
            else:
                data[name] = [str(v) for v in value] if isinstance(value, list | tuple) else str(value)
        data["_save"] = "Save"
        return self.post(url, data)

    def add(self, model: type[models.Model], changes: dict[str, object]):
        return self.submit(self.url(model, "add"), changes)

    def change(self, obj: models.Model, changes: dict[str, object]):
        return self.submit(self.change_url(obj), changes)

    def delete(self, obj: models.Model):
        url = self.url(type(obj), "delete", obj.pk)
        confirm = self.client.get(url)
        assert confirm.status_code == 200, f"GET {url}: {confirm.status_code}"
        return self.post(url, {"post": "yes"})

    def delete_selected(self, objs: list[models.Model]):
        """The changelist's "Delete selected" action: pick, confirm, delete."""
        url = self.url(type(objs[0]), "changelist")
        picked = {"action": "delete_selected", "_selected_action": [str(obj.pk) for obj in objs], "index": "0"}
        with self.committed():
            confirm = self.client.post(url, picked)
        assert confirm.status_code == 200, f"delete_selected confirmation: {confirm.status_code}"
        return self.post(url, {**picked, "post": "yes"})

    # What the visitor sees

    def widget(self, account: Account, group: str | None = None) -> tuple[str, str] | int:
        """The widget's (status, reason), or the status code when there is no answer."""
        response = self.visitor.get(status_url(account, group))
        if response.status_code != 200:
            return response.status_code
        body = response.json()
        return body["status"], body["reason"]

    def present(self, operator: Operator) -> Operator:
        """A live connection of ``operator`` (whatever their status)."""
        with self.committed():
            make_present(operator, conn_id=f"c{operator.id}")
        return operator

    def available(self, operator: Operator) -> Operator:
        """Online and present, with no status event yet (as if switched online before the audit trail began)."""
        Operator.objects.filter(id=operator.id).update(status=Status.ONLINE)
        operator.status = Status.ONLINE
        return self.present(operator)

    def online_and_present(self, operator: Operator) -> Operator:
        """Switched online (a status event) and present."""
        with self.committed():
            operator_set_status(operator=operator, status=Status.ONLINE, source=Source.API)
            make_present(operator)
        return operator


@pytest.fixture(autouse=True)
def forget_widget_accounts():
    """The widget memoises accounts per process: every test starts and ends with none."""
    widget_account_forget()
    yield
    widget_account_forget()


def staff_client() -> Client:
    staff = Operator.objects.create_superuser("root@example.com", "root-password-1", display_name="Root")
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def walk(db, django_capture_on_commit_callbacks) -> Walk:
    return Walk(client=staff_client(), capture=django_capture_on_commit_callbacks)


@dataclass
class Shop:
    """An account whose one operator online is a present agent in no group (so
    counted for the account box and every group's), with an empty group "sales"."""

    account: Account
    owner: Operator
    agent: Operator
    sales: Group


@pytest.fixture
def shop(walk) -> Shop:
    with walk.committed():
        account = make_account(name="Shop")
        agent = make_operator(account=account, name="Agent")
        sales = make_group(account=account, key="sales")
    walk.online_and_present(agent)
    return Shop(account=account, owner=owner_of(account), agent=agent, sales=sales)


@dataclass
class Desk:
    """An account whose one operator online is a present seller in group "sales"
    only: the sales box is online, the account box and group "support" offline."""

    account: Account
    seller: Operator
    sales: Group
    support: Group


@pytest.fixture
def desk(walk) -> Desk:
    with walk.committed():
        account = make_account(name="Desk")
        seller = make_operator(account=account, name="Seller")
        sales = make_group(account=account, key="sales", members=[seller])
        support = make_group(account=account, key="support")
    walk.online_and_present(seller)
    return Desk(account=account, seller=seller, sales=sales, support=support)


# --- Account -----------------------------------------------------------------------------------


def adding_an_account_creates_it_with_its_owner(walk: Walk) -> None:
    response = walk.add(Account, {"name": "New shop", "owner_email": "Boss@New.example", "owner_password": PASSWORD})

    assert_done(response)
    account = Account.objects.get(name="New shop")
    owner = Operator.objects.get(account=account)
    # It should create the account with its one owner, who can log in with the password given.
    assert (owner.email, owner.role, owner.is_active) == ("boss@new.example", Operator.Role.OWNER, True)
    assert owner.check_password(PASSWORD)
    assert walk.widget(account) == ("offline", "no_operator_online")


def adding_an_account_for_a_taken_email_is_refused(walk: Walk) -> None:
    taken = owner_of(make_account())
    before = rows()

    response = walk.add(Account, {"name": "Copy", "owner_email": taken.email, "owner_password": PASSWORD})

    # It should refuse it and create neither the account nor a second operator.
    assert refusals(response)
    assert rows() == before


def changing_an_account_changes_its_settings(walk: Walk) -> None:
    account = make_account(name="Shop")

    response = walk.change(account, {"timezone": "Europe/Prague", "stale_after_seconds": 300, "language": "cs"})

    assert_done(response)
    account.refresh_from_db()
    # It should store the new settings, and the widget speaks the new language.
    assert (account.timezone, account.stale_after_seconds, account.language) == ("Europe/Prague", 300, "cs")
    assert walk.visitor.get(status_url(account)).json()["language"] == "cs"


def changing_an_account_to_invalid_settings_is_refused(walk: Walk) -> None:
    account = make_account(name="Shop")
    before = rows()

    response = walk.change(account, {"timezone": "Mars/Olympus", "stale_after_seconds": 5})

    # It should refuse both and keep the account as it was.
    assert len(refusals(response)) == 2
    assert rows() == before


def deleting_an_account_removes_it_its_widget_and_its_presence(walk: Walk) -> None:
    account, other = make_account(), make_account()
    agent = walk.present(make_operator(account=account))
    assert get_store().snapshot_json(account_id=account.id) is not None

    response = walk.delete(account)

    assert_done(response)
    assert not Account.objects.filter(id=account.id).exists()
    assert not Operator.objects.filter(id=agent.id).exists()
    assert presence_of(account) == {account.id: (None, set())}
    # It should answer 404 for the deleted account's widget, and leave other accounts be.
    assert walk.widget(account) == 404
    assert walk.widget(other) == ("offline", "no_operator_online")


def deleting_selected_accounts_removes_them_and_their_widgets(walk: Walk) -> None:
    first, second, kept = make_account(), make_account(), make_account()
    agents = [walk.present(make_operator(account=account)) for account in (first, second, kept)]

    response = walk.delete_selected([first, second])

    assert_done(response)
    assert list(Account.objects.values_list("id", flat=True)) == [kept.id]
    assert list(Operator.objects.filter(id__in=[agent.id for agent in agents])) == [agents[2]]
    assert presence_of(first, second) == {first.id: (None, set()), second.id: (None, set())}
    # It should answer 404 for both deleted widgets, and leave the kept account be.
    assert (walk.widget(first), walk.widget(second)) == (404, 404)
    assert presence_of(kept)[kept.id][1] == {agents[2].id}


def deleting_an_account_with_a_history_removes_it(walk: Walk, shop: Shop) -> None:
    assert StatusEvent.objects.filter(account=shop.account).exists()
    assert ChatBoxEvent.objects.filter(account=shop.account).exists()

    response = walk.delete(shop.account)

    assert_done(response)
    # It should delete the account with its audit trail: an account that was ever online is no exception.
    assert not Account.objects.filter(id=shop.account.id).exists()
    assert walk.widget(shop.account) == 404


def a_deleted_accounts_widget_answers_404_at_once(walk: Walk) -> None:
    account = make_account()
    assert walk.widget(account) == ("offline", "no_operator_online")

    assert_done(walk.delete(account))

    # It should stop answering for the deleted account at once, though the widget just read it.
    assert walk.widget(account) == 404


# --- Operator ----------------------------------------------------------------------------------


def adding_an_agent_creates_them_offline(walk: Walk, shop: Shop) -> None:
    response = walk.add(
        Operator,
        {
            "email": "New@Shop.example",
            "display_name": "Newbie",
            "account": shop.account.id,
            "role": Operator.Role.AGENT,
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )

    assert_done(response)
    agent = Operator.objects.get(email="new@shop.example")
    # It should create an offline agent of the account who can log in, and leave the widget as it was.
    assert (agent.account_id, agent.role, agent.status) == (shop.account.id, Operator.Role.AGENT, Status.OFFLINE)
    assert agent.check_password(PASSWORD)
    assert walk.widget(shop.account) == ("online", "operators_online")


def deactivating_an_online_operator_switches_them_offline(walk: Walk, shop: Shop) -> None:
    assert walk.widget(shop.account) == ("online", "operators_online")

    response = walk.change(shop.agent, {"is_active": None})

    assert_done(response)
    shop.agent.refresh_from_db()
    assert (shop.agent.is_active, shop.agent.status) == (False, Status.OFFLINE)
    last = StatusEvent.objects.filter(operator=shop.agent).latest("at", "id")
    assert (last.old, last.new, last.source) == (Status.ONLINE, Status.OFFLINE, Source.ADMIN)
    assert shop.agent.id not in operators_present(account_id=shop.account.id)
    # It should turn the widget of the account offline: its only operator online is gone.
    assert walk.widget(shop.account) == ("offline", "no_operator_online")
    assert walk.widget(shop.account, "sales") == ("offline", "no_operator_online")


def changing_memberships_moves_the_group_boxes(walk: Walk, desk: Desk) -> None:
    assert walk.widget(desk.account, "sales") == ("online", "operators_online")
    assert walk.widget(desk.account, "support") == ("offline", "no_operator_online")

    # Out of sales, into support, through the operator's membership rows.
    url = walk.change_url(desk.seller)
    data = walk.form(url)
    data[f"memberships-{inline_row_of(data, 'memberships', 'group', desk.sales.id)}-DELETE"] = "on"
    add_inline_rows(data, "memberships", [{"group": desk.support.id, "operator": desk.seller.id}])
    response = walk.submit(url, data=data)

    assert_done(response)
    assert set(desk.seller.chat_groups.values_list("key", flat=True)) == {"support"}
    # It should move the online seller from the sales box to the support box.
    assert walk.widget(desk.account, "sales") == ("offline", "no_operator_online")
    assert walk.widget(desk.account, "support") == ("online", "operators_online")


def deleting_an_agent_removes_them_and_their_presence(walk: Walk) -> None:
    account = make_account()
    agent = walk.available(make_operator(account=account))
    assert walk.widget(account) == ("online", "operators_online")

    response = walk.delete(agent)

    assert_done(response)
    assert not Operator.objects.filter(id=agent.id).exists()
    assert agent.id not in operators_present(account_id=account.id)
    # It should turn the box offline: its only operator online is gone.
    assert walk.widget(account) == ("offline", "no_operator_online")


def deleting_selected_agents_removes_them(walk: Walk) -> None:
    account = make_account()
    agents = [walk.available(make_operator(account=account)) for _ in range(2)]
    assert walk.widget(account) == ("online", "operators_online")

    response = walk.delete_selected(agents)

    assert_done(response)
    assert not Operator.objects.filter(id__in=[agent.id for agent in agents]).exists()
    assert not operators_present(account_id=account.id)
    # It should turn the box offline: nobody online is left.
    assert walk.widget(account) == ("offline", "no_operator_online")


def deleting_an_agent_with_a_status_history_removes_them(walk: Walk, shop: Shop) -> None:
    assert StatusEvent.objects.filter(operator=shop.agent).exists()

    response = walk.delete(shop.agent)

    assert_done(response)
    # It should delete the agent with their audit trail: an agent who was ever online is no exception.
    assert not Operator.objects.filter(id=shop.agent.id).exists()
    assert walk.widget(shop.account) == ("offline", "no_operator_online")


def _refused_without_a_trace(walk: Walk, shop: Shop, request: Callable[[], object]) -> None:
    """The request is refused with an error shown, and nothing changed: no row,
    no presence, no widget status."""
    other = make_account()
    assert walk.widget(shop.account) == ("online", "operators_online")
    before, presence = rows(), presence_of(shop.account, other)

    response = request()

    errors = refusals(response)
    # It should refuse with an error message and change nothing at all.
    assert errors, f"not refused: {response.status_code}"
    assert rows() == before
    assert presence_of(shop.account, other) == presence
    assert walk.widget(shop.account) == ("online", "operators_online")


def adding_a_second_owner_is_refused(walk: Walk, shop: Shop) -> None:
    fields = {"email": "boss2@shop.example", "display_name": "Boss 2", "account": shop.account.id}
    passwords = {"password1": PASSWORD, "password2": PASSWORD}
    _refused_without_a_trace(
        walk, shop, lambda: walk.add(Operator, {**fields, **passwords, "role": Operator.Role.OWNER})
    )


def making_an_agent_the_owner_is_refused(walk: Walk, shop: Shop) -> None:
    _refused_without_a_trace(walk, shop, lambda: walk.change(shop.agent, {"role": Operator.Role.OWNER}))


def demoting_the_owner_is_refused(walk: Walk, shop: Shop) -> None:
    _refused_without_a_trace(walk, shop, lambda: walk.change(shop.owner, {"role": Operator.Role.ADMIN}))


def deactivating_the_owner_is_refused(walk: Walk, shop: Shop) -> None:
    _refused_without_a_trace(walk, shop, lambda: walk.change(shop.owner, {"is_active": None}))


def moving_the_owner_to_another_account_is_refused(walk: Walk, shop: Shop) -> None:
    elsewhere = make_account()
    _refused_without_a_trace(walk, shop, lambda: walk.change(shop.owner, {"account": elsewhere.id}))


def taking_the_owner_out_of_the_account_is_refused(walk: Walk, shop: Shop) -> None:
    _refused_without_a_trace(walk, shop, lambda: walk.change(shop.owner, {"account": ""}))


def deleting_the_owner_is_refused(walk: Walk, shop: Shop) -> None:
    _refused_without_a_trace(walk, shop, lambda: walk.delete(shop.owner))


def deleting_the_owner_among_selected_operators_is_refused(walk: Walk, shop: Shop) -> None:
    colleague = make_operator(account=shop.account)
    _refused_without_a_trace(walk, shop, lambda: walk.delete_selected([colleague, shop.owner]))


def a_refused_bulk_delete_leaves_everyones_presence_be(walk: Walk, shop: Shop) -> None:
    colleague = walk.available(make_operator(account=shop.account))
    _refused_without_a_trace(walk, shop, lambda: walk.delete_selected([colleague, shop.owner]))


def changing_a_password_on_the_password_page_lets_them_log_in_with_it(walk: Walk, shop: Shop) -> None:
    url = reverse("admin:auth_user_password_change", args=[shop.agent.id])  # UserAdmin's own name
    weak = walk.submit(url, {"password1": "123", "password2": "123"})
    assert refusals(weak)

    response = walk.submit(url, {"password1": "an0ther-Pass-phrase", "password2": "an0ther-Pass-phrase"})

    assert_done(response)
    shop.agent.refresh_from_db()
    # It should set the new password (and not the weak one refused before).
    assert shop.agent.check_password("an0ther-Pass-phrase")
    assert Client().login(email=shop.agent.email, password="an0ther-Pass-phrase")


# --- ApiToken ----------------------------------------------------------------------------------


def _me(walk: Walk, key: str) -> int:
    return walk.visitor.get("/api/v1/me", headers={"Authorization": f"Token {key}"}).status_code


def deleting_a_token_revokes_it_and_logs_its_device_out(walk: Walk) -> None:
    account = make_account()
    agent = make_operator(account=account)
    key, token = token_create(operator=agent, device="Agent's phone", is_mobile=True)
    other_key, _other = token_create(operator=agent, device="Agent's tablet")
    with walk.committed():
        # The phone is the agent's one device present.
        presence_heartbeat(operator=agent, conn_id="phone", device=token_device_tag(token))
        operator_set_status(operator=agent, status=Status.ONLINE, source=Source.MOBILE)
    assert (_me(walk, key), walk.widget(account)) == (200, ("online", "operators_online"))

    response = walk.delete(token)

    assert_done(response)
    # It should refuse the revoked token (and only it), and its device's logout takes the agent offline.
    assert (_me(walk, key), _me(walk, other_key)) == (401, 200)
    assert StatusEvent.objects.filter(operator=agent).latest("at", "id").source == Source.LOGOUT
    assert walk.widget(account) == ("offline", "no_operator_online")


def deleting_selected_tokens_revokes_them(walk: Walk, shop: Shop) -> None:
    keys_and_tokens = [token_create(operator=operator, device="laptop") for operator in (shop.agent, shop.owner)]
    assert [_me(walk, key) for key, _token in keys_and_tokens] == [200, 200]

    response = walk.delete_selected([token for _key, token in keys_and_tokens])

    assert_done(response)
    assert not ApiToken.objects.exists()
    # It should refuse every revoked token.
    assert [_me(walk, key) for key, _token in keys_and_tokens] == [401, 401]


# --- Group ---------------------------------------------------------------------------------------


def adding_a_group_with_a_member_opens_its_box(walk: Walk, desk: Desk) -> None:
    url = walk.url(Group, "add")
    data = walk.form(url)
    data.update({"account": str(desk.account.id), "key": "billing", "name": "Billing"})
    add_inline_rows(data, "memberships", [{"operator": desk.seller.id}])
    assert walk.widget(desk.account, "billing") == 404

    response = walk.submit(url, data=data)

    assert_done(response)
    group = Group.objects.get(account=desk.account, key="billing")
    assert list(group.members.all()) == [desk.seller]
    # It should show the new group's box online: its one member is online and present.
    assert walk.widget(desk.account, "billing") == ("online", "operators_online")


def changing_a_groups_members_moves_its_box(walk: Walk, desk: Desk) -> None:
    with walk.committed():
        Membership.objects.create(group=desk.support, operator=desk.seller)  # so the seller stays grouped
    url = walk.change_url(desk.sales)
    data = walk.form(url)
    data[f"memberships-{inline_row_of(data, 'memberships', 'operator', desk.seller.id)}-DELETE"] = "on"
    owner = owner_of(desk.account)
    add_inline_rows(data, "memberships", [{"operator": owner.id}])

    response = walk.submit(url, {"name": "Sales team"}, data=data)

    assert_done(response)
    desk.sales.refresh_from_db()
    assert (desk.sales.name, list(desk.sales.members.all())) == ("Sales team", [owner])
    # It should turn the box offline once its only online member is out, and online again when back.
    assert walk.widget(desk.account, "sales") == ("offline", "no_operator_online")
    assert walk.widget(desk.account, "support") == ("online", "operators_online")
    assert_done(walk.submit(url, data=add_inline_rows(walk.form(url), "memberships", [{"operator": desk.seller.id}])))
    assert walk.widget(desk.account, "sales") == ("online", "operators_online")


def renaming_a_groups_key_moves_its_box(walk: Walk, desk: Desk) -> None:
    response = walk.change(desk.sales, {"key": "shop-sales"})

    assert_done(response)
    # It should answer for the new key only.
    assert walk.widget(desk.account, "sales") == 404
    assert walk.widget(desk.account, "shop-sales") == ("online", "operators_online")


def deleting_a_group_removes_its_box(walk: Walk, desk: Desk) -> None:
    assert walk.widget(desk.account, "support") == ("offline", "no_operator_online")

    response = walk.delete(desk.support)

    assert_done(response)
    # It should answer 404 for the deleted group and leave the others be.
    assert walk.widget(desk.account, "support") == 404
    assert walk.widget(desk.account, "sales") == ("online", "operators_online")


def deleting_selected_groups_removes_their_boxes(walk: Walk, desk: Desk) -> None:
    kept = make_group(account=desk.account, key="kept")
    assert walk.widget(desk.account, "sales") == ("online", "operators_online")

    response = walk.delete_selected([desk.sales, desk.support])

    assert_done(response)
    assert list(Group.objects.filter(account=desk.account)) == [kept]
    # It should answer 404 for both; the seller, in no group now, counts for every box left.
    assert (walk.widget(desk.account, "sales"), walk.widget(desk.account, "support")) == (404, 404)
    assert walk.widget(desk.account, "kept") == ("online", "operators_online")


# --- OpeningHours ------------------------------------------------------------------------------


def _hours_form(shop: Shop, weekly: str) -> dict[str, object]:
    return {"account": shop.account.id, "group": "", "enabled": "on", "timezone": "UTC", "weekly": weekly}


def adding_closed_hours_closes_the_box_and_deleting_them_reopens_it(walk: Walk, shop: Shop) -> None:
    assert walk.widget(shop.account) == ("online", "operators_online")

    added = walk.add(OpeningHours, _hours_form(shop, json.dumps(CLOSED_ALL_WEEK)))

    assert_done(added)
    hours = OpeningHours.objects.get(account=shop.account, group=None)
    # It should close the box, online operators or not; deleting the hours opens it again.
    assert walk.widget(shop.account) == ("offline", "closed")
    assert_done(walk.delete(hours))
    assert walk.widget(shop.account) == ("online", "operators_online")


def changing_hours_to_disabled_reopens_the_box(walk: Walk, shop: Shop) -> None:
    with walk.committed():
        hours = opening_hours_set(
            account=shop.account, enabled=True, timezone="UTC", weekly=CLOSED_ALL_WEEK, exceptions=[]
        )
    assert walk.widget(shop.account) == ("offline", "closed")

    response = walk.change(hours, {"enabled": None})

    assert_done(response)
    # It should open the box again: the hours no longer apply.
    assert walk.widget(shop.account) == ("online", "operators_online")


def deleting_selected_hours_reopens_their_boxes(walk: Walk, shop: Shop) -> None:
    with walk.committed():
        schedules = [
            opening_hours_set(
                account=shop.account, group=group, enabled=True, timezone="UTC", weekly=CLOSED_ALL_WEEK, exceptions=[]
            )
            for group in (None, shop.sales)
        ]
    assert (walk.widget(shop.account), walk.widget(shop.account, "sales")) == (("offline", "closed"),) * 2

    response = walk.delete_selected(schedules)

    assert_done(response)
    assert not OpeningHours.objects.exists()
    # It should open both boxes again.
    assert (walk.widget(shop.account), walk.widget(shop.account, "sales")) == (("online", "operators_online"),) * 2


def adding_invalid_hours_is_refused(walk: Walk, shop: Shop) -> None:
    for weekly in ('{"monday": [{"from": "25:00", "to": "17:00"}]}', '{"someday": []}', "{not json"):
        before = rows()

        response = walk.add(OpeningHours, _hours_form(shop, weekly))

        # It should refuse the schedule with a message and store nothing.
        assert refusals(response), weekly
        assert rows() == before
        assert walk.widget(shop.account) == ("online", "operators_online")


# --- audit trails, visitors' messages, site staff's permission groups ----------------------------


def read_only_trail(model: type[models.Model]) -> Callable:
    def scenario(walk: Walk, shop: Shop) -> None:
        # The shop's agent went online (a status event) and its box flipped (a chat box event).
        event = model.objects.first()
        assert event is not None
        model_admin = admin.site._registry[model]
        before = rows()
        changelist = walk.client.get(walk.url(model, "changelist"))
        assert changelist.status_code == 200
        assert "delete_selected" not in model_admin.get_actions(changelist.wsgi_request)
        # It should show the events and refuse to add, change or delete one, alone or selected.
        assert walk.client.get(walk.change_url(event)).status_code == 200
        assert walk.client.get(walk.url(model, "add")).status_code == 403
        assert walk.client.post(walk.url(model, "add"), {"_save": "Save"}).status_code == 403
        assert walk.client.post(walk.change_url(event), {"_save": "Save"}).status_code == 403
        assert walk.client.get(walk.url(model, "delete", event.pk)).status_code == 403
        assert walk.client.post(walk.url(model, "delete", event.pk), {"post": "yes"}).status_code == 403
        picked = {"action": "delete_selected", "_selected_action": [event.pk], "index": "0", "post": "yes"}
        walk.client.post(walk.url(model, "changelist"), picked)
        assert rows() == before

    scenario.__name__ = f"{model.__name__.lower()}s_are_read_only"
    return scenario


def a_visitors_conversation(shop: Shop, client_id: str = "walk-1") -> Conversation:
    started = visitor_conversation_start(
        account_id=shop.account.id, token=None, body="Hi", client_id=client_id, name="Visitor", email="v@example.com"
    )
    return started.conversation


def conversations_are_read_only(walk: Walk, shop: Shop) -> None:
    a_visitors_conversation(shop)
    read_only_trail(Conversation)(walk, shop)


def visitors_are_read_only(walk: Walk, shop: Shop) -> None:
    a_visitors_conversation(shop)
    read_only_trail(Visitor)(walk, shop)


def closing_selected_conversations_closes_them_through_the_service(walk: Walk, shop: Shop) -> None:
    first, second = a_visitors_conversation(shop, "walk-1"), a_visitors_conversation(shop, "walk-2")
    Conversation.objects.filter(id=second.id).update(status="open")
    url = walk.url(Conversation, "changelist")
    picked = {"action": "close_conversations", "_selected_action": [str(first.id), str(second.id)], "index": "0"}

    assert_done(walk.post(url, picked))

    # It should close both, with the time, and end any wait for a reply.
    closed = Conversation.objects.filter(id__in=[first.id, second.id])
    assert {(c.status, c.closed_at is not None, c.waiting_since) for c in closed} == {("closed", True, None)}


def a_permission_group_goes_round_trip(walk: Walk) -> None:
    view_accounts = Permission.objects.get(codename="view_account")

    assert_done(walk.add(AuthGroup, {"name": "Support desk", "permissions": [view_accounts.id]}))
    group = AuthGroup.objects.get(name="Support desk")
    assert_done(walk.change(group, {"name": "Helpdesk"}))
    spare = AuthGroup.objects.create(name="Spare")

    group.refresh_from_db()
    # It should keep the permissions through a rename, and delete groups alone or selected.
    assert (group.name, list(group.permissions.all())) == ("Helpdesk", [view_accounts])
    assert_done(walk.delete(group))
    assert_done(walk.delete_selected([spare]))
    assert not AuthGroup.objects.exists()


# --- FaqEntry ----------------------------------------------------------------------------------


def _entry_form(shop: Shop, **changes: object) -> dict[str, object]:
    return {
        "account": shop.account.id,
        "language": "en",
        "question": "What are your opening hours?",
        "phrasings": json.dumps(["When are you open?"]),
        "answer": "Mon–Fri 8–18.",
        "enabled": "on",
        **changes,
    }


def _bot_answers(account: Account, question: str) -> str | None:
    account.refresh_from_db()
    matched, _nearest = faq_match(account=account, text=question)
    return matched.entry.answer if matched else None


def adding_changing_and_deleting_an_entry_moves_the_bots_answer(walk: Walk, shop: Shop) -> None:
    assert_done(walk.add(FaqEntry, _entry_form(shop)))
    entry = FaqEntry.objects.get(account=shop.account)
    # It should be what the bot answers at once, then its new answer, then nothing.
    assert _bot_answers(shop.account, "when are you open?") == "Mon–Fri 8–18."
    assert_done(walk.change(entry, {"answer": "Mon–Sat 8–20."}))
    assert _bot_answers(shop.account, "when are you open?") == "Mon–Sat 8–20."
    assert_done(walk.delete(entry))
    assert _bot_answers(shop.account, "when are you open?") is None


def deleting_selected_entries_removes_them_from_the_bot(walk: Walk, shop: Shop) -> None:
    entries = [
        faq_entry_create(account=shop.account, question=q, answer="A.", language="en")
        for q in ("Do you ship abroad?", "Can I pay by card?")
    ]
    assert_done(walk.delete_selected(entries))
    assert not FaqEntry.objects.exists()
    assert _bot_answers(shop.account, "can i pay by card?") is None


def adding_an_html_answer_or_another_accounts_group_is_refused(walk: Walk, shop: Shop) -> None:
    other_group = make_group(account=make_account(name="Other"), key="other-sales")
    for changes in ({"answer": "<b>Open</b> daily"}, {"group": other_group.id}):
        before = rows()

        response = walk.add(FaqEntry, _entry_form(shop, **changes))

        # It should refuse with a message and store nothing.
        assert refusals(response), changes
        assert rows() == before


# --- the cases, one per registered model -------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """What the model's admin offers site staff, and the scenarios that walk it."""

    add: bool
    change: bool
    delete: bool
    scenarios: tuple[Callable, ...]


CASES: dict[str, Case] = {
    "accounts.Account": Case(
        add=True,
        change=True,
        delete=True,
        scenarios=(
            adding_an_account_creates_it_with_its_owner,
            adding_an_account_for_a_taken_email_is_refused,
            changing_an_account_changes_its_settings,
            changing_an_account_to_invalid_settings_is_refused,
            deleting_an_account_removes_it_its_widget_and_its_presence,
            deleting_selected_accounts_removes_them_and_their_widgets,
            deleting_an_account_with_a_history_removes_it,
            a_deleted_accounts_widget_answers_404_at_once,
        ),
    ),
    "accounts.Operator": Case(
        add=True,
        change=True,
        delete=True,
        scenarios=(
            adding_an_agent_creates_them_offline,
            deactivating_an_online_operator_switches_them_offline,
            changing_memberships_moves_the_group_boxes,
            deleting_an_agent_removes_them_and_their_presence,
            deleting_selected_agents_removes_them,
            deleting_an_agent_with_a_status_history_removes_them,
            adding_a_second_owner_is_refused,
            making_an_agent_the_owner_is_refused,
            demoting_the_owner_is_refused,
            deactivating_the_owner_is_refused,
            moving_the_owner_to_another_account_is_refused,
            taking_the_owner_out_of_the_account_is_refused,
            deleting_the_owner_is_refused,
            deleting_the_owner_among_selected_operators_is_refused,
            a_refused_bulk_delete_leaves_everyones_presence_be,
            changing_a_password_on_the_password_page_lets_them_log_in_with_it,
        ),
    ),
    "accounts.ApiToken": Case(
        add=False,
        change=False,
        delete=True,
        scenarios=(deleting_a_token_revokes_it_and_logs_its_device_out, deleting_selected_tokens_revokes_them),
    ),
    "presence.StatusEvent": Case(add=False, change=False, delete=False, scenarios=(read_only_trail(StatusEvent),)),
    "presence.ChatBoxEvent": Case(add=False, change=False, delete=False, scenarios=(read_only_trail(ChatBoxEvent),)),
    "groups.Group": Case(
        add=True,
        change=True,
        delete=True,
        scenarios=(
            adding_a_group_with_a_member_opens_its_box,
            changing_a_groups_members_moves_its_box,
            renaming_a_groups_key_moves_its_box,
            deleting_a_group_removes_its_box,
            deleting_selected_groups_removes_their_boxes,
        ),
    ),
    "hours.OpeningHours": Case(
        add=True,
        change=True,
        delete=True,
        scenarios=(
            adding_closed_hours_closes_the_box_and_deleting_them_reopens_it,
            changing_hours_to_disabled_reopens_the_box,
            deleting_selected_hours_reopens_their_boxes,
            adding_invalid_hours_is_refused,
        ),
    ),
    "conversations.Conversation": Case(
        add=False,
        change=False,
        delete=False,
        scenarios=(conversations_are_read_only, closing_selected_conversations_closes_them_through_the_service),
    ),
    "conversations.Visitor": Case(add=False, change=False, delete=False, scenarios=(visitors_are_read_only,)),
    "conversations.FaqEntry": Case(
        add=True,
        change=True,
        delete=True,
        scenarios=(
            adding_changing_and_deleting_an_entry_moves_the_bots_answer,
            deleting_selected_entries_removes_them_from_the_bot,
            adding_an_html_answer_or_another_accounts_group_is_refused,
        ),
    ),
    "auth.Group": Case(add=True, change=True, delete=True, scenarios=(a_permission_group_goes_round_trip,)),
}

REGISTERED = sorted(admin.site._registry, key=lambda model: model._meta.label)


def _walks() -> list:
    params = []
    for model in REGISTERED:
        case = CASES.get(model._meta.label)
        if case is None:
            params.append(pytest.param(model, None, id=f"{model._meta.label}-NO-CASE"))
            continue
        params += [
            pytest.param(model, scenario, id=f"{model._meta.label}-{scenario.__name__}") for scenario in case.scenarios
        ]
    return params


def test_it_has_a_case_for_every_model_in_the_admin():
    registered = {model._meta.label for model in REGISTERED}
    # It should know every registered model, and no model the admin dropped.
    assert set(CASES) == registered
    assert all(case.scenarios for case in CASES.values())


@pytest.mark.parametrize("model", [pytest.param(model, id=model._meta.label) for model in REGISTERED])
def test_it_offers_each_model_only_what_its_case_allows(walk, model):
    case = CASES.get(model._meta.label)
    assert case is not None, f"{model._meta.label} is in the admin with no case in the walk"
    model_admin = admin.site._registry[model]
    request = walk.client.get(walk.url(model, "changelist")).wsgi_request
    offered = (
        model_admin.has_add_permission(request),
        model_admin.has_change_permission(request),
        model_admin.has_delete_permission(request),
    )
    # It should offer exactly what the case says, and refuse an add page it does not offer.
    assert offered == (case.add, case.change, case.delete)
    assert walk.client.get(walk.url(model, "add")).status_code == (200 if case.add else 403)


@pytest.mark.parametrize(("model", "scenario"), _walks())
def test_it_walks_the_admin(request, walk, model, scenario):
    assert scenario is not None, f"{model._meta.label} is in the admin with no case in the walk"
    _walk, *needs = inspect.signature(scenario).parameters
    scenario(walk, *(request.getfixturevalue(name) for name in needs))


# --- the sockets of a deactivated operator ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_it_closes_the_sockets_of_an_operator_deactivated_in_the_admin():
    def given():
        account = make_account(name="Shop")
        agent = make_operator(account=account, name="Agent")
        key, _token = token_create(operator=agent, device="Agent's phone", is_mobile=True)
        return account, agent, key, staff_client()

    account, agent, key, client = await database_sync_to_async(given)()
    phone = Socket(token_headers(key))
    widget = WebsocketCommunicator(router, f"/ws/widget/{account.widget_key}/")
    try:
        assert await phone.connect()
        assert (await phone.receive())["type"] == "hello"
        await database_sync_to_async(operator_set_status)(operator=agent, status=Status.ONLINE, source=Source.API)
        assert (await phone.receive_until(lambda m: m["type"] == "chat_box"))["status"] == "online"
        assert (await widget.connect(timeout=5))[0]
        assert (await widget.receive_json_from(timeout=3))["status"] == "online"

        response = await database_sync_to_async(deactivate_in_the_admin)(client, agent)

        assert_done(response)
        # It should close the operator's socket as logged out, and the visitor's widget turns offline.
        assert await phone.closed_with() == CLOSE_LOGGED_OUT
        pushed = await widget.receive_json_from(timeout=3)
        assert (pushed["type"], pushed["status"], pushed["reason"]) == ("status", "offline", "no_operator_online")
        last = await database_sync_to_async(StatusEvent.objects.filter(operator=agent).latest)("at", "id")
        assert (last.new, last.source) == (Status.OFFLINE, Source.ADMIN)
    finally:
        await phone.close()
        await widget.disconnect()


def deactivate_in_the_admin(client: Client, operator: Operator):
    """Untick "active" on the operator's change form and save it."""
    url = Walk.url(Operator, "change", operator.id)
    data = form_values(client.get(url).content.decode())
    data.pop("is_active")
    return client.post(url, {**data, "_save": "Save"})
