"""Shortcut: Daphne refuses a request body over ``REQUEST_BODY_MAX_BYTES`` as it arrives.

Daphne 4 lets Twisted spool the whole body to a temporary file, then reads it
back and queues every chunk for the application at once, so a 250 MB upload
(to any path, no login needed) costs the process 250 MB of memory before
Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is ever consulted, and the allocator
keeps most of it afterwards. Here daphne's request answers ``413`` and closes
the connection as soon as the declared length (``Content-Length``) or the
bytes received (chunked) pass the limit: at most the limit is ever held, in
Twisted's temporary file.

It replaces three methods of ``daphne.http_protocol.WebRequest`` (daphne 4.x,
pinned): ``gotLength`` and ``handleContentChunk`` (Twisted's
``http.Request``), and ``process``. ``install`` checks they are there; when
they are not it changes nothing, and a system check (``chatstatus.W001``)
says the limit is not enforced early (Django's own limits still apply).
A reverse proxy in front should refuse large bodies too (``client_max_body_size``).
"""

import logging
from io import BytesIO

from django.core import checks

logger = logging.getLogger(__name__)

_TOO_LARGE_BODY = b'{"error":"request_too_large"}'
_TOO_LARGE = (
    b"HTTP/1.1 413 Payload Too Large\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: " + str(len(_TOO_LARGE_BODY)).encode() + b"\r\n"
    b"Connection: close\r\n\r\n" + _TOO_LARGE_BODY
)

_state: dict[str, int | bool] = {"limit": 0, "installed": False}


def _web_request():
    try:
        from daphne.http_protocol import WebRequest
    except ImportError:
        return None
    return WebRequest


def supported() -> bool:
    cls = _web_request()
    return cls is not None and all(
        callable(getattr(cls, name, None)) for name in ("gotLength", "handleContentChunk", "process")
    )


def install(*, limit: int) -> bool:
    """Make daphne refuse bodies over ``limit`` bytes; True when it does."""
    _state["limit"] = limit
    if _state["installed"]:
        return True
    if not supported():
        logger.warning("daphne's request class is not the one known: request bodies are not limited early")
        return False
    cls = _web_request()
    got_length, handle_chunk, process = cls.gotLength, cls.handleContentChunk, cls.process

    def _refuse(request) -> None:
        request._chatstatus_refused = True
        # Drop what was spooled so far; nothing of this request reaches the application.
        request.content = BytesIO()
        transport = request.channel.transport if request.channel is not None else None
        if transport is not None:
            transport.write(_TOO_LARGE)
            transport.loseConnection()

    def limited_got_length(self, length):
        self._chatstatus_received = 0
        self._chatstatus_refused = False
        if length is not None and length > _state["limit"]:
            _refuse(self)
            return
        got_length(self, length)

    def limited_handle_chunk(self, data):
        if getattr(self, "_chatstatus_refused", False):
            return
        self._chatstatus_received = getattr(self, "_chatstatus_received", 0) + len(data)
        if self._chatstatus_received > _state["limit"]:
            _refuse(self)
            return
        handle_chunk(self, data)

    def limited_process(self):
        if getattr(self, "_chatstatus_refused", False):
            return None
        return process(self)

    cls.gotLength = limited_got_length
    cls.handleContentChunk = limited_handle_chunk
    cls.process = limited_process
    _state["installed"] = True
    return True


@checks.register()
def body_limit_check(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    if supported():
        return []
    return [
        checks.Warning(
            "daphne's request class changed: request bodies over REQUEST_BODY_MAX_BYTES are not refused early",
            hint="Refuse large bodies at the reverse proxy (client_max_body_size).",
            id="chatstatus.W001",
        )
    ]
