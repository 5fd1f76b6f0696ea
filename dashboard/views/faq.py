"""Dashboard pages of the FAQ bot (admins): the entries, trying a question,
the bot's mode, and the report."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.services import account_update
from conversations.faq import selectors, services
from conversations.faq.matching import CONFIDENT
from conversations.models import FaqEntry
from dashboard.forms.faq import BotModeForm, FaqEntryForm, TryForm
from dashboard.forms.operators import form_add_service_errors
from dashboard.views.base import dashboard_page, render_page


@dashboard_page(admin=True)
def faq_list(request: HttpRequest) -> HttpResponse:
    """The entries, the bot's mode, and a box to try a question: what the bot
    would answer, with its score (and the nearest entry when it stays silent)."""
    account = request.user.account
    tried = TryForm(request.GET or None)
    trial = None
    if tried.is_valid():
        matched, nearest = selectors.faq_match(account=account, text=tried.cleaned_data["q"], any_group=True)
        trial = {"matched": matched, "nearest": nearest}
    context = {
        "entries": selectors.faq_entries(account_id=account.id),
        "mode_form": BotModeForm(initial={"bot_mode": account.bot_mode}),
        "try_form": tried,
        "trial": trial,
        "threshold": CONFIDENT,
        "nav": "faq",
    }
    return render_page(request, "dashboard/faq.html", context)


@require_POST
@dashboard_page(admin=True)
def faq_mode(request: HttpRequest) -> HttpResponse:
    form = BotModeForm(request.POST)
    if form.is_valid():
        account_update(account=request.user.account, bot_mode=form.cleaned_data["bot_mode"])
        messages.success(request, _("Saved."))
    else:
        messages.error(request, _("Choose when the bot answers."))
    return redirect("dashboard:faq")


@dashboard_page(admin=True)
def faq_create(request: HttpRequest) -> HttpResponse:
    account = request.user.account
    form = FaqEntryForm(request.POST or None, account=account)
    if request.method == "POST" and form.is_valid():
        try:
            services.faq_entry_create(account=account, **form.service_fields())
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, _("FAQ entry added."))
            return redirect("dashboard:faq")
    return render_page(request, "dashboard/faq_form.html", {"form": form, "entry": None, "nav": "faq"})


@dashboard_page(admin=True)
def faq_edit(request: HttpRequest, entry_id: int) -> HttpResponse:
    entry = get_object_or_404(FaqEntry.objects.select_related("account"), id=entry_id, account=request.user.account)
    form = FaqEntryForm(request.POST or None, account=request.user.account, entry=entry)
    if request.method == "POST" and form.is_valid():
        try:
            services.faq_entry_update(entry=entry, **form.service_fields())
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, _("Saved."))
            return redirect("dashboard:faq")
    return render_page(request, "dashboard/faq_form.html", {"form": form, "entry": entry, "nav": "faq"})


@require_POST
@dashboard_page(admin=True)
def faq_delete(request: HttpRequest, entry_id: int) -> HttpResponse:
    entry = get_object_or_404(FaqEntry, id=entry_id, account=request.user.account)
    services.faq_entry_delete(entry=entry)
    messages.success(request, _("FAQ entry deleted."))
    return redirect("dashboard:faq")


@dashboard_page(admin=True)
def faq_report(request: HttpRequest) -> HttpResponse:
    """What the bot answered in the last 30 days, how helpful each entry was,
    and the questions it could not answer (write new entries from those)."""
    report = selectors.faq_report(account_id=request.user.account_id)
    return render_page(request, "dashboard/faq_report.html", {"report": report, "nav": "faq"})
