from django.core.management.base import BaseCommand
from django.db import transaction
from django.test.utils import override_settings

from accounts.models import Operator
from accounts.services import account_create, account_update, operator_create
from conversations.faq.demo import DEMO_FAQ
from conversations.faq.services import faq_entry_create
from conversations.models import FaqEntry
from conversations.services import operator_message_post, visitor_conversation_start
from groups.services import group_create
from hours.services import opening_hours_set

DEMO_EMAIL = "owner@demo.example"
DEMO_PASSWORD = "demo-pass-123"  # noqa: S105 (a documented demo login)

WEEKDAY_HOURS = [{"from": "08:00", "to": "18:00"}]


class Command(BaseCommand):
    help = "Create (or reuse) a demo account with groups, operators and opening hours; prints how to log in."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Where the server answers")

    # Demo visitors notify nobody by e-mail (outermost: the e-mails go after commit).
    @override_settings(MAILERS={"default": {"BACKEND": "django.core.mail.backends.dummy.EmailBackend"}})
    @transaction.atomic
    def handle(self, *args, url, **options):
        owner = Operator.objects.filter(email=DEMO_EMAIL).select_related("account").first()
        if owner is None:
            account, owner = account_create(
                name="Demo Shop", email=DEMO_EMAIL, password=DEMO_PASSWORD, display_name="Olivia Owner"
            )
            account = account_update(account=account, timezone="Europe/Prague")
            people = [
                ("anna@demo.example", "Anna Admin", Operator.Role.ADMIN),
                ("sam@demo.example", "Sam Sales", Operator.Role.AGENT),
                ("sue@demo.example", "Sue Support", Operator.Role.AGENT),
                ("tom@demo.example", "Tomáš Novák", Operator.Role.AGENT),
            ]
            ops = {
                email: operator_create(
                    account=account, email=email, display_name=name, password=DEMO_PASSWORD, role=role
                )
                for email, name, role in people
            }
            group_create(account=account, key="sales", name="Sales", member_ids=[ops["sam@demo.example"].id])
            support = group_create(
                account=account,
                key="support",
                name="Support",
                member_ids=[ops["sue@demo.example"].id, ops["tom@demo.example"].id],
            )
            weekly = {day: WEEKDAY_HOURS for day in ("monday", "tuesday", "wednesday", "thursday", "friday")}
            opening_hours_set(account=account, enabled=False, timezone="Europe/Prague", weekly=weekly, exceptions=[])
            support_weekly = {**weekly, "friday": [{"from": "08:00", "to": "18:00"}, {"from": "22:00", "to": "02:00"}]}
            opening_hours_set(
                account=account,
                group=support,
                enabled=True,
                timezone="Europe/Prague",
                weekly=support_weekly,
                exceptions=[{"date": "2026-12-24", "intervals": []}, {"date": "2026-12-31", "intervals": []}],
            )
            _demo_conversations(account, sam=ops["sam@demo.example"])
        account = owner.account
        if not FaqEntry.objects.filter(account=account).exists():
            # Also for a demo account made before the FAQ bot existed.
            for entry in DEMO_FAQ:
                faq_entry_create(account=account, **entry._asdict())
        self.stdout.write(f"Demo account: {account.name}")
        self.stdout.write(f"Dashboard:    {url}/")
        self.stdout.write(f"Log in as:    {DEMO_EMAIL} / {DEMO_PASSWORD}  (other operators: same password)")
        self.stdout.write(f"Widget key:   {account.widget_key}")
        self.stdout.write(f"Widget demo:  {url}/widget/demo/{account.widget_key}/")
        self.stdout.write(f"FAQ bot:      {url}/faq/  ({FaqEntry.objects.filter(account=account).count()} entries)")
        self.stdout.write(f"Admin:        {url}/admin/  (create a superuser with: manage.py createsuperuser)")


def _demo_conversations(account, *, sam: Operator) -> None:
    """Two conversations in the inbox: one answered in Sales, one waiting in Support (in Czech)."""
    answered = visitor_conversation_start(
        account_id=account.id,
        token=None,
        body="Hi! Do you ship to Slovakia, and how much does it cost?",
        client_id="demo-1",
        group_key="sales",
        name="Eva",
        page_url="https://shop.example/cart",
    )
    operator_message_post(
        conversation_id=answered.conversation.id,
        operator=sam,
        body="Hello Eva, yes: shipping to Slovakia is 4.90 EUR, free over 60 EUR. Delivery takes 2–3 days.",
        client_id="demo-2",
    )
    visitor_conversation_start(
        account_id=account.id,
        token=answered.visitor_token,
        body="Great, thank you!",
        client_id="demo-3",
    )
    visitor_conversation_start(
        account_id=account.id,
        token=None,
        body="Dobrý den, objednávka 10452 ještě nedorazila. Můžete to prosím zkontrolovat?",
        client_id="demo-4",
        group_key="support",
        name="Jan Dvořák",
        email="jan@example.cz",
        page_url="https://shop.example/orders/10452",
        language="cs",
    )
