"""The chat box snapshot: the shape every reader gets, and pure helpers on it.

A snapshot is what ``presence.rules.chat_box_compute`` decided, in the public
JSON shape of ``GET /api/v1/chat-box``, with the ``version`` the store gave it.
It is stored as JSON in the presence store and published as is.
"""

from datetime import UTC, datetime
from typing import TypedDict

from presence.rules import BoxState, ChatBoxState


class BoxBody(TypedDict):
    status: str
    reason: str
    next_change_at: str | None


class ChatBoxBody(BoxBody):
    groups: dict[str, BoxBody]


class ChatBoxSnapshot(ChatBoxBody):
    version: int


class WidgetBox(BoxBody):
    version: int


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _box_json(box: BoxState) -> BoxBody:
    return {"status": box.status, "reason": box.reason, "next_change_at": _iso(box.next_change_at)}


def chat_box_body(state: ChatBoxState) -> ChatBoxBody:
    """The snapshot's content (without ``version``), as stored and published."""
    return {
        **_box_json(state.account_box),
        "groups": {key: _box_json(box) for key, box in state.groups.items()},
    }


def chat_box_due_at(state: ChatBoxState) -> datetime | None:
    """The earliest moment a schedule will change any box of the snapshot."""
    moments = [box.next_change_at for box in (state.account_box, *state.groups.values()) if box.next_change_at]
    return min(moments, default=None)


def snapshot_is_due(snapshot: ChatBoxBody, *, now: datetime) -> bool:
    """True once a schedule flip the snapshot announced has come: it must be recomputed before it is shown."""
    moments = [snapshot["next_change_at"], *(box["next_change_at"] for box in snapshot["groups"].values())]
    return any(moment and datetime.fromisoformat(moment) <= now for moment in moments)


def widget_box(snapshot: ChatBoxSnapshot, group_key: str | None) -> WidgetBox | None:
    """The public widget answer for the account box or one group (None: unknown group)."""
    box = snapshot if group_key is None else snapshot["groups"].get(group_key)
    if box is None:
        return None
    return {
        "status": box["status"],
        "reason": box["reason"],
        "version": snapshot["version"],
        "next_change_at": box["next_change_at"],
    }
