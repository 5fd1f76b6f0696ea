from django.apps import AppConfig


class WidgetConfig(AppConfig):
    name = "widget"
    verbose_name = "Widget"

    def ready(self) -> None:
        from widget import asgi  # noqa: F401 (registers the fast path's start-up check)
