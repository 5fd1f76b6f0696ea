"""Django's ASGI handler, with each request's middleware and view in one
crossing to its thread.

Django's ``ASGIHandler`` builds the middleware chain for async mode. Our
sync-only middleware (and every ``MiddlewareMixin`` hook, adapted one by one)
made a request cross between the event loop and its thread about a dozen
times, each crossing waiting for the other side: on a busy loop, that is what
the slowest requests waited for. Here the chain is built for sync mode, as
under WSGI, and runs whole in the request's thread (the one Django gives each
request's context, where its signals and ``close`` run too) in one crossing:
a request makes at most three (the request signals, the chain, the close).
Everything else is Django's: reading the body, the request signals, sending
the response, a client's disconnect.

It relies on ``BaseHandler.load_middleware(is_async=False)`` and
``BaseHandler.get_response`` (what ``WSGIHandler`` uses) and on
``ASGIHandler.run_get_response`` awaiting ``get_response_async``. When Django
lacks them, ``asgi_handler`` gives Django's own handler and the system check
``chatstatus.W005`` says so.
"""

import inspect

from asgiref.sync import sync_to_async
from django.core import checks
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest, HttpResponseBase


class OneHopASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        BaseHandler.__init__(self)
        self.load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


def supported() -> bool:
    try:
        source = inspect.getsource(ASGIHandler.run_get_response)
    except (AttributeError, OSError, TypeError):
        return False
    return "self.get_response_async(" in source and callable(getattr(BaseHandler, "get_response", None))


def asgi_handler() -> ASGIHandler:
    """The handler ``chatstatus.asgi`` serves Django with (Django must be set up)."""
    return OneHopASGIHandler() if supported() else ASGIHandler()


@checks.register()
def handler_check(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    if supported():
        return []
    return [
        checks.Warning(
            "Django's ASGI handler is not the one chatstatus.handler knows: requests run Django's "
            "async middleware chain (more crossings between the event loop and threads).",
            hint="Pin Django to the version in requirements.lock, or update chatstatus/handler.py.",
            id="chatstatus.W005",
        )
    ]
