"""Django's ``migrate``, after one step for databases from before the apps moved
(``accounts.migration_history``)."""

from django.core.management.commands import migrate
from django.db import connections

from accounts.migration_history import adopt_moved_models


class Command(migrate.Command):
    def handle(self, *args, **options):
        if adopt_moved_models(connections[options["database"]]) and options["verbosity"] >= 1:
            self.stdout.write("Recorded accounts.0001_initial: the moved models' tables are already here.")
        return super().handle(*args, **options)
