"""Presence writes, by concern: ``chatbox`` (the snapshot engine), ``status``
(an operator's chosen status), ``connections`` (presence and the sweep).

The names below are the package's interface; callers import them from here.
"""

from presence.services.chatbox import (
    achat_box_read,
    chat_box_read,
    chat_box_refresh,
    chat_box_refresh_due,
    chat_box_refresh_many,
    chat_box_refresh_on_commit,
    presence_after_failover,
    presence_resync,
    presence_resync_later,
)
from presence.services.connections import (
    account_presence_forget,
    apresence_heartbeat,
    operator_devices_end,
    operator_logout,
    presence_disconnect,
    presence_heartbeat,
    presence_reseed,
    presence_sweep,
)
from presence.services.status import StatusChangeLimited, operator_set_status

__all__ = [
    "StatusChangeLimited",
    "account_presence_forget",
    "achat_box_read",
    "apresence_heartbeat",
    "chat_box_read",
    "chat_box_refresh",
    "chat_box_refresh_due",
    "chat_box_refresh_many",
    "chat_box_refresh_on_commit",
    "operator_devices_end",
    "operator_logout",
    "operator_set_status",
    "presence_after_failover",
    "presence_disconnect",
    "presence_heartbeat",
    "presence_reseed",
    "presence_resync",
    "presence_resync_later",
    "presence_sweep",
]
