"""A stand-in for the chat server of the widget contract (ARCHITECTURE.md §4 "Widget").

The widget's HTTP calls are answered by Playwright routes and its socket by
``route_web_socket``, both at the browser context, so every tab of a test sees the
same server. The page and the script come from two made-up origins (a shop and the
chat server): cross-origin, as on a customer's site, without any server process.
"""

import io
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.live import ROOT

SHOP = "http://shop.test"
CHAT = "http://chat.test"
KEY = "k3y-demo"
BASE_PATH = f"/widget/v1/{KEY}"
SCRIPT = ROOT / "static" / "widget" / "widget.js"
NOW = "2026-03-02T10:00:00Z"

JANA = {"id": 7, "display_name": "Jana Nováková", "avatar_url": "/media/avatars/jana.png"}
PETR = {"id": 8, "display_name": "Petr", "avatar_url": None}


def avatar_png() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (64, 64), "#0e7490")
    draw = ImageDraw.Draw(image)
    draw.ellipse((18, 10, 46, 38), fill="#fde68a")
    draw.ellipse((8, 40, 56, 84), fill="#fde68a")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@dataclass
class Call:
    method: str
    path: str
    token: str | None
    body: Any


@dataclass
class Planned:
    """A scripted answer for the next call whose method and path match, used once."""

    method: str
    path: re.Pattern
    status: int = 0
    body: Any = None
    headers: dict = field(default_factory=dict)
    abort: bool = False
    # Store the message as the real server would, then lose the answer on the way back.
    store_then_abort: bool = False


class FakeChat:
    def __init__(self, *, status: str = "online", language: str = "en", account_name: str = "Bike shop") -> None:
        self.status = {
            "type": "status",
            "status": status,
            "reason": "operators_online" if status == "online" else "no_operator_online",
            "version": 1,
            "next_change_at": None,
            "language": language,
            "account_name": account_name,
        }
        self.visitors: dict[str, dict] = {}  # token -> visitor
        self.conversations: dict[str, dict] = {}  # token -> the visitor's current conversation
        self.messages: dict[str, list[dict]] = {}  # conversation id -> messages
        self.calls: list[Call] = []
        self.frames: list[dict] = []  # what widgets sent on their sockets
        self.sockets: list[dict] = []  # {"ws": WebSocketRoute, "token": str | None}
        self.planned: list[Planned] = []
        self.ids = itertools.count(1)
        self.avatar = avatar_png()
        self.pages: dict[str, str] = {}

    # --- set-up ------------------------------------------------------------------

    def install(self, context) -> None:
        context.route(re.compile(r"^http://(shop|chat)\.test/.*"), self._http)
        context.route_web_socket(re.compile(r"^ws://chat\.test/ws/widget/.*"), self._socket)

    def page(self, path: str = "/index.html", *, attrs: str = "") -> str:
        self.pages[path] = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bike shop</title>
<style>body {{ font: 16px/1.5 Georgia, serif; margin: 0; padding: 2rem; background: #f5f5f4; }}</style></head>
<body>
  <h1>Bike shop</h1>
  <p>Road bikes, city bikes and everything in between.</p>
  <script src="{CHAT}/widget.js" data-key="{KEY}" {attrs} async></script>
</body></html>"""
        return SHOP + path

    def plan(self, method: str, path: str, **kwargs) -> None:
        self.planned.append(Planned(method, re.compile(path), **kwargs))

    # --- what the operators and the server do -------------------------------------------

    def new_message(self, conversation: dict, *, author: str, body: str, **extra) -> dict:
        messages = self.messages.setdefault(conversation["id"], [])
        message = {
            "id": next(self.ids),
            "conversation_id": conversation["id"],
            "seq": len(messages) + 1,
            "author": author,
            "operator": None,
            "kind": "text",
            "body": body,
            "client_id": None,
            "created_at": NOW,
            "asks_email": False,
        }
        message.update(extra)
        messages.append(message)
        conversation["last_message_at"] = NOW
        return message

    def say(self, token: str, *, author: str = "operator", body: str, push: bool = True, **extra) -> dict:
        """A message of the operator (or the server's automatic one, or the bot), pushed live."""
        conversation = self.conversations[token]
        if author == "operator":
            extra.setdefault("operator", JANA)
        message = self.new_message(conversation, author=author, body=body, **extra)
        if push:
            self.push(token, {"type": "message", "message": message})
        return message

    def push(self, token: str, frame: dict) -> None:
        for socket in self.sockets:
            if socket["token"] == token:
                socket["ws"].send(json.dumps(frame))

    def set_status(self, status: str) -> None:
        self.status = {**self.status, "status": status, "version": self.status["version"] + 1}
        for socket in self.sockets:
            socket["ws"].send(json.dumps(self.status))

    def only_token(self) -> str:
        assert len(self.visitors) == 1, self.visitors
        return next(iter(self.visitors))

    def posted(self) -> list[Call]:
        """The visitor's message posts, in order (both endpoints)."""
        return [c for c in self.calls if c.method == "POST" and "/conversations" in c.path]

    # --- the socket ------------------------------------------------------------------

    def _socket(self, ws) -> None:
        entry = {"ws": ws, "token": None}
        self.sockets.append(entry)

        def on_message(text) -> None:
            frame = json.loads(text)
            self.frames.append(frame)
            if frame.get("type") == "visitor" and frame.get("token") in self.visitors:
                entry["token"] = frame["token"]

        ws.on_message(on_message)
        ws.on_close(lambda *args: self.sockets.remove(entry) if entry in self.sockets else None)
        ws.send(json.dumps(self.status))

    # --- HTTP --------------------------------------------------------------------------

    def _http(self, route) -> None:
        request = route.request
        url = urlsplit(request.url)
        if url.netloc == "shop.test":
            html = self.pages.get(url.path)
            if html is None:
                return route.fulfill(status=404, body="not found")
            return route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)
        if url.path == "/widget.js":
            return route.fulfill(status=200, content_type="text/javascript; charset=utf-8", body=SCRIPT.read_text())
        if url.path.startswith("/media/"):
            return route.fulfill(status=200, content_type="image/png", body=self.avatar)
        if not url.path.startswith(BASE_PATH + "/"):
            return self._json(route, 404, {"error": "not_found"})
        path = url.path[len(BASE_PATH) :]
        token = request.header_value("x-visitor-token")
        body = request.post_data_json if request.post_data else None
        self.calls.append(Call(request.method, path + (f"?{url.query}" if url.query else ""), token, body))
        for planned in self.planned:
            if planned.method == request.method and planned.path.search(path):
                self.planned.remove(planned)
                if planned.abort:
                    return route.abort("connectionreset")
                if planned.store_then_abort:
                    self._answer(request.method, path, url.query, token, body)
                    return route.abort("connectionreset")
                return self._json(route, planned.status, planned.body, planned.headers)
        status, answer = self._answer(request.method, path, url.query, token, body)
        return self._json(route, status, answer)

    def _json(self, route, status: int, body: Any, headers: dict | None = None) -> None:
        route.fulfill(
            status=status,
            content_type="application/json",
            body=json.dumps(body),
            headers={
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Expose-Headers": "Retry-After",
                **(headers or {}),
            },
        )

    def _answer(self, method: str, path: str, query: str, token: str | None, body: Any) -> tuple[int, Any]:
        if (method, path) == ("GET", "/status"):
            return 200, {k: v for k, v in self.status.items() if k != "type"}
        if (method, path) == ("POST", "/conversations"):
            if token not in self.visitors:
                replayed = self._replay(body.get("client_id"))
                if replayed:
                    return 200, replayed
                token = f"tok-{next(self.ids)}"
                self.visitors[token] = {"id": next(self.ids), "name": body.get("name"), "email": body.get("email")}
            conversation = self.conversations.get(token)
            if conversation is None:
                conversation = self.conversations[token] = {
                    "id": f"conv-{next(self.ids)}",
                    "status": "open",
                    "group": body.get("group"),
                    "visitor": self.visitors[token],
                    "assignee": None,
                    "created_at": NOW,
                    "last_message_at": NOW,
                    "waiting_since": NOW,
                }
            status, message = self._visitor_message(conversation, body)
            if status >= 400:
                return status, message
            return status, {"visitor_token": token, "conversation": conversation, "message": message}
        conversation = self.conversations.get(token)
        if (method, path) == ("GET", "/conversations/current"):
            if conversation is None:
                return 404, {"error": "not_found"}
            after = int(parse_qs(query).get("after", ["0"])[0])
            messages = [m for m in self.messages.get(conversation["id"], []) if m["seq"] > after]
            return 200, {"conversation": conversation, "messages": messages}
        match = re.fullmatch(r"/conversations/([^/]+)/messages", path)
        if method == "POST" and match:
            if conversation is None or conversation["id"] != match[1]:
                return 404, {"error": "not_found"}
            return self._visitor_message(conversation, body)
        if (method, path) == ("PATCH", "/visitor"):
            if token not in self.visitors:
                return 404, {"error": "not_found"}
            self.visitors[token].update({k: v for k, v in body.items() if k in ("name", "email")})
            return 200, {"visitor": self.visitors[token]}
        return 404, {"error": "not_found"}

    def _replay(self, client_id: str | None) -> dict | None:
        """The retry of a first message whose answer was lost (same client_id, no token
        yet): the same message, and a fresh token for its visitor (as the server does)."""
        for old, conversation in list(self.conversations.items()):
            for message in self.messages.get(conversation["id"], []):
                if message["author"] == "visitor" and message["client_id"] == client_id:
                    token = f"tok-{next(self.ids)}"
                    self.visitors[token] = self.visitors.pop(old)
                    self.conversations[token] = self.conversations.pop(old)
                    return {"visitor_token": token, "conversation": conversation, "message": message}
        return None

    def _visitor_message(self, conversation: dict, body: dict) -> tuple[int, dict]:
        text = body.get("body", "")
        if not text.strip() or len(text) > 4000:
            return 400, {"error": "invalid", "fields": {"body": ["At most 4000 characters."]}}
        for message in self.messages.get(conversation["id"], []):
            if message["client_id"] == body["client_id"]:
                return 200, message
        return 201, self.new_message(conversation, author="visitor", body=text, client_id=body["client_id"])
