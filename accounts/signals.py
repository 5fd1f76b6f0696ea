"""What the services of the lower apps tell the apps above them.

``accounts``, ``groups`` and ``hours`` sit below ``presence`` and may not import
it, yet a change they make can move a chat box or must end an operator's
sessions. Their services send one of these signals, always, from the service
that made the change; ``presence.receivers`` (``conversations.receivers`` for
the busy delay) answers each with one call to a service (connected in the
app's ``ready``; a system check fails start-up if nothing listens). Receivers
run inside the sender's transaction and schedule their publishing with
``transaction.on_commit``.
"""

from django.dispatch import Signal

# A fact the chat box rules read changed: an account's settings, an operator's
# activity, a group, a membership, opening hours. Arguments: ``account_id``.
chat_box_inputs_changed = Signal()

# An operator lost access (deactivated, deleted, moved to another account) or
# their credentials changed (a new password): every device of theirs is logged
# out at once. Arguments: ``operator``, ``switch_offline`` (False when the
# operator row is about to be deleted, or a device stays logged in), and
# optionally ``keep_device``: the device tag that stays logged in (the one
# that changed the password); None ends every device.
operator_access_ended = Signal()

# An account was deleted. Arguments: ``account_id``.
account_deleted = Signal()

# An account's busy delay got shorter: conversations already waiting must get
# their busy message at the new, earlier moment. Arguments: ``account_id``.
busy_delay_shortened = Signal()

ALL = {
    "chat_box_inputs_changed": chat_box_inputs_changed,
    "operator_access_ended": operator_access_ended,
    "account_deleted": account_deleted,
    "busy_delay_shortened": busy_delay_shortened,
}
