"""The FAQ bot in real headless Chromium, against the real server: a visitor
asks while nobody is online, the bot answers under the offline message, and
the visitor says it helped."""

from playwright.sync_api import expect

from conversations.faq.services import faq_entry_create
from conversations.models import FaqAnswer
from tests.browser.test_widget import Website
from tests.browser.test_widget_chat import watch, widget, write
from tests.factories import make_account

ANSWER = "We are open Mon–Fri 8:00–18:00. Holidays: https://shop.example/holidays"


def test_the_bot_answers_an_offline_visitor_who_says_it_helped(live_server, new_context, screenshot):
    account = make_account(name="Bike shop", language="en")
    faq_entry_create(
        account=account,
        question="What are your opening hours?",
        phrasings=["When are you open?", "What time do you close?"],
        answer=ANSWER,
        language="en",
    )
    site = Website()
    try:
        page = new_context().new_page()
        seen = watch(page)
        page.goto(site.add("/index.html", server=live_server.url, key=account.widget_key))
        expect(widget(page, ".w")).to_have_attribute("data-status", "offline")
        widget(page, ".bubble").click()

        write(page, "Hi! When are you open on Friday? I'd like to pick up a bike.")

        bot = widget(page, ".log .m.b")
        # It should answer after the offline message, as the virtual assistant, with a real link.
        expect(bot.locator(".tx")).to_contain_text("We are open Mon–Fri 8:00–18:00")
        expect(bot.locator(".who")).to_have_text("Virtual assistant")
        expect(bot.locator(".tx a")).to_have_attribute("href", "https://shop.example/holidays")
        expect(widget(page, ".log .m.a")).to_have_count(1)  # the offline message, before it
        helped = bot.get_by_role("button", name="That helped")
        expect(helped).to_be_visible()
        # Nobody is online: no offer of a person.
        expect(bot.get_by_role("button", name="Talk to a person")).to_be_hidden()
        screenshot(page, "widget-faq-answer")

        helped.click()

        expect(bot.locator(".fb")).to_be_hidden()
        screenshot(page, "widget-faq-helped")
        answer = FaqAnswer.objects.get(conversation__account=account)
        assert answer.feedback == "helpful"
        assert seen == {"dialogs": [], "errors": []}
    finally:
        site.close()
