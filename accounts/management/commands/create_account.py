from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.auth import token_create
from accounts.services import account_create


class Command(BaseCommand):
    help = "Create an account with an owner operator; prints the widget key and an API token."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="The website's name")
        parser.add_argument("--email", required=True, help="The owner's e-mail (their login)")
        parser.add_argument("--password", help="The owner's password (omit to set it later)")

    def handle(self, *args, name, email, password, **options):
        try:
            account, owner = account_create(name=name, email=email, password=password)
        except ValidationError as exc:
            messages = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())
            raise CommandError(messages) from None
        key, _token = token_create(operator=owner, device="cli")
        self.stdout.write(f"widget_key={account.widget_key}")
        self.stdout.write(f"api_token={key}")
