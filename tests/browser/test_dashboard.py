"""The dashboard in real headless Chromium against a real Daphne process."""

import re

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from playwright.sync_api import Page, expect

from accounts.models import Account, Operator, Status
from conversations.services import visitor_conversation_start
from hours.models import OpeningHours
from presence.models import Source, StatusEvent
from presence.services import operator_set_status
from tests.browser.conftest import DESKTOP, PHONE
from tests.factories import PASSWORD, make_account, make_group, make_operator, owner_of
from tests.live import Daphne


def server_password(operator: Operator) -> None:
    """The server process hashes with the production hashers, not the tests' MD5:
    store a PBKDF2 hash it can check (few iterations: it upgrades it on log-in)."""
    hasher = PBKDF2PasswordHasher()
    encoded = hasher.encode(PASSWORD, hasher.salt(), iterations=1000)
    Operator.objects.filter(id=operator.id).update(password=encoded)


def log_in(context, server, operator: Operator) -> Page:
    server_password(operator)
    page = context.new_page()
    page.goto(server.url + "/login/")
    page.fill("input[name=username]", operator.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/")
    wait_until_live(page)
    return page


def wait_until_live(page: Page) -> None:
    """The page's socket is open and the server's hello has been shown."""
    expect(page.locator("html")).to_have_attribute("data-ws", "ready")


def avatar(page: Page):
    return page.locator("#status-button")


def menu_item(page: Page, status: str):
    return page.locator(f'#status-menu [role="menuitemradio"][data-status="{status}"]')


@pytest.fixture
def shop(transactional_db):
    account = make_account(name="Kavárna U Lípy")
    make_group(account=account, key="sales")
    return account


def test_clicking_the_avatar_switches_status_and_every_device_follows(live_server, new_context, shop, screenshot):
    operator = make_operator(account=shop, name="Jana Dvořáková")
    laptop = log_in(new_context(), live_server, operator)
    second_device = log_in(new_context(), live_server, operator)
    expect(avatar(laptop)).to_have_attribute("data-status", "offline")

    avatar(laptop).click()
    expect(avatar(laptop)).to_have_attribute("aria-expanded", "true")
    expect(laptop.locator("#status-menu")).to_be_visible()
    expect(menu_item(laptop, "offline")).to_have_attribute("aria-checked", "true")
    screenshot(laptop, "dashboard-status-menu-open-desktop-en")
    menu_item(laptop, "online").click()

    expect(avatar(laptop)).to_have_attribute("data-status", "online")
    expect(laptop.locator("#status-menu")).to_be_hidden()
    expect(menu_item(laptop, "online")).to_have_attribute("aria-checked", "true")
    # The other device changes without a reload, as do the team list and the box.
    expect(avatar(second_device)).to_have_attribute("data-status", "online")
    expect(second_device.locator(f'.tag[data-status-of="{operator.id}"]')).to_have_text("Online")
    expect(second_device.locator('[data-box="__account__"]')).to_have_attribute("data-status", "online")
    operator.refresh_from_db()
    assert operator.status == Status.ONLINE
    assert StatusEvent.objects.get(operator=operator).source == Source.DASHBOARD

    avatar(second_device).click()
    menu_item(second_device, "offline").click()
    expect(avatar(laptop)).to_have_attribute("data-status", "offline")
    expect(laptop.locator('[data-box="__account__"]')).to_have_attribute("data-status", "offline")
    expect(laptop.locator('[data-box="__account__"] .box-reason')).to_have_text("No operator is online")


def test_the_status_menu_works_from_the_keyboard(live_server, new_context, shop):
    operator = make_operator(account=shop, status=Status.ONLINE)
    page = log_in(new_context(), live_server, operator)

    avatar(page).focus()
    page.keyboard.press("Enter")
    expect(avatar(page)).to_have_attribute("aria-expanded", "true")
    expect(menu_item(page, "online")).to_be_focused()
    page.keyboard.press("Escape")
    expect(avatar(page)).to_have_attribute("aria-expanded", "false")
    expect(avatar(page)).to_be_focused()

    page.keyboard.press("Enter")
    page.keyboard.press("ArrowDown")
    expect(menu_item(page, "offline")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(menu_item(page, "online")).to_be_focused()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")

    expect(avatar(page)).to_have_attribute("data-status", "offline")
    expect(avatar(page)).to_be_focused()
    operator.refresh_from_db()
    assert operator.status == Status.OFFLINE


def test_an_admin_forces_a_colleague_offline_and_the_colleagues_page_follows(
    live_server, new_context, shop, screenshot
):
    colleague = make_operator(account=shop, status=Status.ONLINE, name="Tomáš Novák")
    colleague_page = log_in(new_context(), live_server, colleague)
    admin_page = log_in(new_context(), live_server, owner_of(shop))
    admin_page.goto(live_server.url + "/operators/")
    wait_until_live(admin_page)
    row = admin_page.locator(f'tr[data-operator="{colleague.id}"]')
    expect(row.locator(".presence")).to_have_text("Connected")
    expect(row.locator(".devices")).to_contain_text("Browser")
    screenshot(admin_page, "dashboard-force-offline-desktop-en")

    row.get_by_role("button", name="Force offline").click()

    expect(avatar(colleague_page)).to_have_attribute("data-status", "offline")
    expect(colleague_page.locator(".me-status .status-label")).to_have_text("Offline")
    expect(admin_page.locator(f'tr[data-operator="{colleague.id}"] .tag')).to_have_text("Offline")
    assert StatusEvent.objects.get(operator=colleague).source == Source.ADMIN


def test_the_hours_editor_saves_an_overnight_interval_and_an_exception(live_server, new_context, shop, screenshot):
    page = log_in(new_context(), live_server, owner_of(shop))
    page.goto(live_server.url + "/hours/")
    wait_until_live(page)

    page.get_by_label("Use opening hours").check()
    page.select_option("select[name=timezone]", "Europe/Prague")
    friday = page.locator('fieldset[data-day="friday"]')
    friday.get_by_role("button", name="Add hours").click()
    friday.get_by_label("Friday: from").fill("22:00")
    friday.get_by_label("Friday: to").fill("06:00")
    monday = page.locator('fieldset[data-day="monday"]')
    monday.get_by_role("button", name="Add hours").click()
    monday.get_by_role("button", name="Add hours").click()
    monday.get_by_label("Monday: from").first.fill("09:00")
    monday.get_by_label("Monday: to").first.fill("12:00")
    monday.get_by_label("Monday: from").last.fill("13:00")
    monday.get_by_label("Monday: to").last.fill("17:00")
    page.get_by_role("button", name="Add exception").click()
    exception = page.locator(".exception-row").last
    exception.get_by_label("Date").fill("2026-12-24")
    expect(exception.locator(".exception-hours")).to_be_hidden()
    page.get_by_role("button", name="Add exception").click()
    special = page.locator(".exception-row").last
    special.get_by_label("Date").fill("2026-12-31")
    special.get_by_label("Closed or special hours").select_option("hours")
    special.get_by_label("Hours that day").fill("10:00–14:00")
    screenshot(page, "dashboard-hours-editing-desktop-en")
    page.get_by_role("button", name="Save opening hours").click()

    expect(page.locator(".flash")).to_have_text("Opening hours saved.")
    expect(page.locator("#hours-preview")).to_contain_text(re.compile("Opens|Closes"))
    hours = OpeningHours.objects.get(account=shop, group=None)
    assert hours.enabled and hours.timezone == "Europe/Prague"
    assert hours.weekly["friday"] == [{"from": "22:00", "to": "06:00"}]
    assert hours.weekly["monday"] == [{"from": "09:00", "to": "12:00"}, {"from": "13:00", "to": "17:00"}]
    assert hours.exceptions == [
        {"date": "2026-12-24", "intervals": []},
        {"date": "2026-12-31", "intervals": [{"from": "10:00", "to": "14:00"}]},
    ]
    screenshot(page, "dashboard-hours-saved-desktop-en")


def test_the_hours_editor_shows_an_overlap_next_to_the_day_and_keeps_the_input(live_server, new_context, shop):
    page = log_in(new_context(), live_server, owner_of(shop))
    page.goto(live_server.url + "/hours/")
    tuesday = page.locator('fieldset[data-day="tuesday"]')
    for start, end in (("09:00", "17:00"), ("16:00", "18:00")):
        tuesday.get_by_role("button", name="Add hours").click()
        tuesday.get_by_label("Tuesday: from").last.fill(start)
        tuesday.get_by_label("Tuesday: to").last.fill(end)
    page.get_by_role("button", name="Save opening hours").click()

    tuesday = page.locator('fieldset[data-day="tuesday"]')
    expect(tuesday.locator(".field-errors")).to_contain_text("overlap")
    expect(tuesday.get_by_label("Tuesday: from").last).to_have_value("16:00")
    assert not OpeningHours.objects.exists()


def test_logging_out_sends_the_other_tabs_of_that_browser_to_the_login_page(live_server, new_context, shop):
    operator = make_operator(account=shop, status=Status.ONLINE)
    browser = new_context()
    tab = log_in(browser, live_server, operator)
    other_tab = browser.new_page()
    other_tab.goto(live_server.url + "/history/")
    wait_until_live(other_tab)
    phone = log_in(new_context(viewport=PHONE), live_server, make_operator(account=shop))

    tab.get_by_role("button", name="Log out").click()

    # The other tab may ask for the login page while the session is still
    # being ended; it lands there all the same (perhaps with ?next=/).
    login_page = re.compile(re.escape(live_server.url) + r"/login/")
    other_tab.wait_for_url(login_page)
    tab.wait_for_url(login_page)
    expect(other_tab.locator("input[name=username]")).to_be_visible()
    operator.refresh_from_db()
    assert operator.status == Status.OFFLINE
    assert StatusEvent.objects.get(operator=operator).source == Source.LOGOUT
    expect(phone.locator(f'[data-status-of="{operator.id}"]').first).to_have_attribute("data-status", "offline")


def test_a_lost_connection_shows_a_banner_and_resyncs_after_reconnecting(live_server, new_context, shop):
    operator = make_operator(account=shop)
    page = log_in(new_context(), live_server, operator)
    banner = page.locator("#connection-banner")
    expect(banner).to_be_hidden()

    live_server.kill()
    expect(banner).to_be_visible()
    expect(banner).to_have_text("Reconnecting…")
    # A change the page cannot hear about while the server is down.
    operator_set_status(operator=operator, status=Status.ONLINE, source=Source.API)
    restarted = Daphne(name="browser-restarted", port=live_server.port)
    try:
        expect(banner).to_be_hidden(timeout=20_000)
        expect(avatar(page)).to_have_attribute("data-status", "online")
        expect(page.locator(".me-status .status-label")).to_have_text("Online")
    finally:
        restarted.stop()


def test_without_javascript_the_status_switch_is_a_plain_form(live_server, new_context, shop):
    operator = make_operator(account=shop)
    server_password(operator)
    page = new_context(java_script_enabled=False).new_page()
    page.goto(live_server.url + "/login/")
    page.fill("input[name=username]", operator.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")

    page.get_by_role("menuitemradio", name=re.compile("^Online")).click()

    page.wait_for_url(live_server.url + "/")
    expect(avatar(page)).to_have_attribute("data-status", "online")
    operator.refresh_from_db()
    assert operator.status == Status.ONLINE


LOOKS = [("desktop", DESKTOP), ("phone", PHONE)]


@pytest.mark.parametrize("language", ["en", "cs"])
@pytest.mark.parametrize(("device", "viewport"), LOOKS)
def test_screenshots_of_every_page(live_server, new_context, shop, screenshot, language, device, viewport):
    Account.objects.filter(id=shop.id).update(language=language)
    owner = owner_of(shop)
    colleague = make_operator(account=shop, status=Status.ONLINE, name="Věra Veselá")
    hrabal = make_operator(account=shop, name="Bohumil Hrabal", role=Operator.Role.ADMIN)
    for who, old, new, source in (
        (colleague, Status.OFFLINE, Status.ONLINE, Source.DASHBOARD),
        (hrabal, Status.OFFLINE, Status.ONLINE, Source.MOBILE),
        (hrabal, Status.ONLINE, Status.OFFLINE, Source.STALE_SWEEP),
    ):
        StatusEvent.objects.create(account=shop, operator=who, old=old, new=new, source=source)
    visitor_conversation_start(
        account_id=shop.id,
        token=None,
        body="Máte zítra otevřeno?",
        client_id="karel-1",
        name="Karel Čapek",
        email="karel@example.cz",
        page_url="https://kavarna.example/menu",
    )
    OpeningHours.objects.create(
        account=shop,
        enabled=True,
        timezone="Europe/Prague",
        weekly={"monday": [{"from": "09:00", "to": "17:00"}], "friday": [{"from": "22:00", "to": "06:00"}]},
        exceptions=[{"date": "2026-12-24", "intervals": []}],
    )
    context = new_context(viewport=viewport)
    log_in(new_context(), live_server, colleague)
    page = log_in(context, live_server, owner)
    suffix = f"{device}-{language}"
    screenshot(page, f"dashboard-overview-{suffix}")
    avatar(page).click()
    expect(page.locator("#status-menu")).to_be_visible()
    screenshot(page, f"dashboard-overview-menu-{suffix}")
    page.keyboard.press("Escape")
    for path, name in (
        ("/operators/", "operators"),
        ("/hours/", "hours"),
        ("/history/", "history"),
        ("/embed/", "widget"),
        ("/automatic-messages/", "automatic-messages"),
        ("/groups/", "groups"),
        ("/inbox/", "inbox"),
        ("/profile/", "profile"),
    ):
        page.goto(live_server.url + path)
        wait_until_live(page)
        screenshot(page, f"dashboard-{name}-{suffix}")
    # Before logging in, the page follows the browser's language.
    login_page = new_context(viewport=viewport, locale="cs-CZ" if language == "cs" else "en-US").new_page()
    login_page.goto(live_server.url + "/login/")
    screenshot(login_page, f"dashboard-login-{suffix}")
