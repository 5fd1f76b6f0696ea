from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import Account, Operator
from groups.models import Group


class GroupForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    key = forms.CharField(
        label=_("Key"),
        max_length=50,
        help_text=_("Used in the embed code as data-group. Lowercase letters, digits, hyphens and underscores."),
        widget=forms.TextInput(
            attrs={"spellcheck": "false", "autocapitalize": "none", "pattern": "[a-z0-9][a-z0-9_-]*"}
        ),
    )
    members = forms.ModelMultipleChoiceField(
        label=_("Members"), queryset=Operator.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, account: Account, group: Group | None = None, **kwargs) -> None:
        if group is not None:
            kwargs.setdefault("initial", {"name": group.name, "key": group.key, "members": list(group.members.all())})
        super().__init__(*args, **kwargs)
        self.fields["members"].queryset = Operator.objects.filter(account=account, is_active=True).order_by(
            "display_name"
        )
        self.fields["members"].label_from_instance = lambda operator: operator.display_name

    def clean_key(self) -> str:
        return self.cleaned_data["key"].strip()

    def service_fields(self) -> dict:
        return {
            "key": self.cleaned_data["key"],
            "name": self.cleaned_data["name"],
            "member_ids": [operator.id for operator in self.cleaned_data["members"]],
        }
