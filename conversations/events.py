"""Where a conversation's changes go: the operators who may see it (their
sockets filter by rule 6, see ``conversations.consumers``) and the visitor's
widget sockets (the widget hub, by token digest). Services publish them only
from ``transaction.on_commit``."""

import json

from presence.events import account_group, widget_group


def conversation_frames(
    *,
    account_id: int,
    visitor_digest: str,
    group_key: str | None,
    assignee_ids: list[int],
    frames: list[dict],
    to_visitor: list[dict] | None = None,
) -> list[tuple[str, dict]]:
    """What to publish (``presence.events.publish_many``): ``frames`` to the
    account's operator sockets, and ``to_visitor`` (default: the same frames)
    to the visitor's widgets."""
    messages: list[tuple[str, dict]] = []
    for frame in frames:
        messages.append(
            (
                account_group(account_id),
                {
                    "type": "conversation.frame",
                    "text": json.dumps(frame, ensure_ascii=False),
                    "group_key": group_key,
                    # The assignee, and a previous one who must hear of the change.
                    "assignee_ids": assignee_ids,
                },
            )
        )
    for frame in frames if to_visitor is None else to_visitor:
        messages.append(
            (
                widget_group(account_id),
                {"type": "widget.visitor", "visitor": visitor_digest, "text": json.dumps(frame, ensure_ascii=False)},
            )
        )
    return messages
