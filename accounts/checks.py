"""Start-up check: the services' signals reach someone (see ``accounts.signals``)."""

from django.core import checks

from accounts.signals import ALL


@checks.register()
def signals_have_receivers(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    return [
        checks.Error(
            f"nothing receives accounts.signals.{name}: chat boxes and sessions would not follow changes",
            hint="Install the 'presence' and 'conversations' apps.",
            id="accounts.E001",
        )
        for name, signal in ALL.items()
        if not signal.has_listeners()
    ]
