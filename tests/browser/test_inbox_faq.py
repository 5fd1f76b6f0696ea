"""The FAQ bot in the inbox, in real headless Chromium: the entry that answers
the visitor's question is offered above the reply box, one click puts it
there, and a new question brings its own suggestion; what a visitor says of a
bot answer shows under it at once; an admin tries a question on the FAQ page."""

import requests
from playwright.sync_api import expect

from accounts.models import Status
from conversations.faq.services import faq_entry_create
from tests.browser.test_dashboard import log_in
from tests.browser.test_inbox import open_inbox, row, visitor_writes
from tests.factories import make_account, make_operator

HOURS = "Po–Pá 8–18, So 9–12."
SHIPPING = "Doprava stojí 79 Kč, nad 1 500 Kč zdarma."


def test_the_operator_inserts_the_suggested_answer_in_one_click(live_server, new_context, screenshot):
    shop = make_account(name="Kavárna U Lípy", language="cs")
    for question, phrasings, answer in (
        ("Jaká je otevírací doba?", ["Kdy máte otevřeno?"], HOURS),
        ("Kolik stojí doprava?", ["Cena dopravy"], SHIPPING),
    ):
        faq_entry_create(account=shop, question=question, phrasings=phrasings, answer=answer, language="cs")
    operator = make_operator(account=shop, status=Status.ONLINE, name="Jana")
    tab = open_inbox(log_in(new_context(), live_server, operator), live_server)
    started = visitor_writes(live_server, shop, "dobry den, kdy mate zitra oteviraci dobu?", language="cs")
    conversation_id = started["conversation"]["id"]

    row(tab, conversation_id).click()

    chip = tab.locator("#suggestion")
    expect(chip).to_be_visible()
    expect(chip.locator("#suggestion-question")).to_have_text("Jaká je otevírací doba?")
    screenshot(tab, "inbox-faq-suggestion")
    chip.get_by_role("button").click()
    # It should put the answer in the reply box, for the operator to send or edit.
    expect(tab.locator("#reply-body")).to_have_value(HOURS)
    expect(chip).to_be_hidden()

    # The visitor asks something else: its own suggestion comes with it.
    visitor_writes(live_server, shop, "a kolik stoji doprava?", token=started["visitor_token"], language="cs")
    expect(chip.locator("#suggestion-question")).to_have_text("Kolik stojí doprava?")


def test_an_admin_tries_a_question_on_the_faq_page(live_server, new_context, screenshot):
    shop = make_account(name="Bike shop", language="en")
    faq_entry_create(
        account=shop,
        question="What are your opening hours?",
        phrasings=["When are you open?"],
        answer="Mon–Fri 8–18. Holidays: https://shop.example/holidays",
        language="en",
    )
    page = log_in(new_context(), live_server, shop.operators.get())
    page.goto(live_server.url + "/faq/")

    page.get_by_label("A visitor asks").fill("hi, are you opened on friday afternoon?")
    page.get_by_role("button", name="Try", exact=True).click()

    trial = page.locator("[data-faq-trial]")
    expect(trial).to_contain_text("The bot answers")
    expect(trial.locator("[data-score]")).to_contain_text("score 0.")
    expect(trial.locator(".faq-answer")).to_contain_text("Mon–Fri 8–18")
    screenshot(page, "faq-try-a-question")


def test_the_visitors_word_on_a_bot_answer_shows_at_once_in_the_open_conversation(live_server, new_context, screenshot):
    shop = make_account(name="Bike shop", language="en")
    faq_entry_create(
        account=shop,
        question="What are your opening hours?",
        phrasings=["When are you open?"],
        answer="Mon–Fri 8–18.",
        language="en",
    )
    operator = make_operator(account=shop, name="Jana")  # not online: the bot answers the visitor
    tab = open_inbox(log_in(new_context(), live_server, operator), live_server)
    started = visitor_writes(live_server, shop, "hello, when are you open?")
    conversation_id = started["conversation"]["id"]
    row(tab, conversation_id).click()
    bot = tab.locator('.message[data-author="bot"]')
    expect(bot.locator(".message-text")).to_have_text("Mon–Fri 8–18.")
    expect(bot.locator(".message-feedback")).to_be_hidden()

    # The visitor clicks "That helped" in the widget.
    response = requests.post(
        f"{live_server.url}/widget/v1/{shop.widget_key}/conversations/{conversation_id}"
        f"/messages/{bot.get_attribute('data-id')}/feedback",
        json={"helpful": True},
        headers={"X-Visitor-Token": started["visitor_token"]},
        timeout=10,
    )
    assert response.status_code == 200, response.text

    # It should show under the answer without a reload, and stay after one.
    expect(bot.locator(".message-feedback")).to_have_text("The visitor says this helped")
    screenshot(tab, "inbox-faq-feedback")
    tab.reload()
    expect(tab.locator('.message[data-author="bot"] .message-feedback')).to_have_text("The visitor says this helped")
