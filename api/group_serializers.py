"""Shapes of groups in the REST API: a group is named by its ``key``."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from api.serializers import BoundedListField, IdField, StrictCharField
from groups.models import Group
from groups.services import MAX_MEMBERS  # the service's cap, checked here before any item


class GroupSerializer(serializers.Serializer):
    key = StrictCharField(
        max_length=50, help_text=_("What a widget's `data-group` names: lowercase letters, digits, - and _.")
    )
    name = StrictCharField(max_length=120)
    members = BoundedListField(
        child=IdField(), max_length=MAX_MEMBERS, required=False, help_text=_("Ids of the member operators.")
    )

    def to_representation(self, group: Group) -> dict:
        return {
            "key": group.key,
            "name": group.name,
            "members": sorted(membership.operator_id for membership in group.memberships.all()),
        }
