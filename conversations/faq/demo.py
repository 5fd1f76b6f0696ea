# ruff: noqa: E501 (answers are prose: one line each reads better than split strings)
"""The demo account's FAQ (``manage.py seed_demo``): the common questions of
an outdoor shop in Czech and English, each with the other ways visitors ask it."""

from typing import NamedTuple


class DemoEntry(NamedTuple):
    language: str
    question: str
    phrasings: list[str]
    answer: str


DEMO_FAQ: list[DemoEntry] = [
    DemoEntry(
        "cs",
        "Jaká je vaše otevírací doba?",
        ["Kdy máte otevřeno?", "V kolik hodin otevíráte a zavíráte?", "Máte otevřeno o víkendu?"],
        "Zákaznická linka i prodejna mají otevřeno Po–Pá 8:00–18:00 a v sobotu 9:00–12:00. V neděli a o svátcích máme zavřeno.",
    ),
    DemoEntry(
        "cs",
        "Kolik stojí doprava?",
        ["Jaká je cena dopravy?", "Kolik platím za poštovné?", "Za kolik posíláte zboží?"],
        "Doprava přes Zásilkovnu stojí 79 Kč, kurýrem PPL 119 Kč, na Slovensko 4,90 €. Přehled najdete na https://shop.example/doprava.",
    ),
    DemoEntry(
        "cs",
        "Od jaké částky je doprava zdarma?",
        ["Kdy je poštovné zdarma?", "Máte dopravu zadarmo?"],
        "Při nákupu nad 1 500 Kč je doprava do výdejního místa zdarma.",
    ),
    DemoEntry(
        "cs",
        "Jak dlouho trvá doručení?",
        ["Kdy mi přijde balík?", "Za jak dlouho dorazí objednávka?", "Jaká je dodací lhůta?"],
        "Zboží skladem odesíláme do 24 hodin v pracovní dny, doručení obvykle trvá 1–2 pracovní dny.",
    ),
    DemoEntry(
        "cs",
        "Kde zjistím, kde je moje zásilka?",
        ["Jak sledovat zásilku?", "Kde najdu číslo pro sledování balíku?", "Kde je můj balík?"],
        "Odkaz na sledování zásilky vám přijde e-mailem, jakmile balík odešleme. Stav objednávky vidíte také v účtu na https://shop.example/ucet.",
    ),
    DemoEntry(
        "cs",
        "Jak můžu vrátit zboží?",
        ["Chci vrátit objednávku", "Jak funguje vrácení zboží?", "Odstoupení od smlouvy do 14 dnů"],
        "Zboží můžete vrátit do 30 dnů bez udání důvodu. Vyplňte formulář na https://shop.example/vraceni a pošlete balík na naši adresu.",
    ),
    DemoEntry(
        "cs",
        "Jak reklamovat vadné zboží?",
        ["Přišlo mi poškozené zboží", "Zboží je rozbité, co mám dělat?", "Chci podat reklamaci"],
        "Reklamaci zadáte na https://shop.example/reklamace; přiložte fotky vady. Vyřídíme ji do 30 dnů, obvykle do týdne.",
    ),
    DemoEntry(
        "cs",
        "Jak mohu zaplatit?",
        ["Jaké máte způsoby platby?", "Můžu platit kartou?", "Dá se platit přes Apple Pay nebo Google Pay?"],
        "Platit můžete kartou online, Apple Pay, Google Pay, bankovním převodem nebo na dobírku.",
    ),
    DemoEntry(
        "cs",
        "Můžu si zboží vyzvednout osobně?",
        ["Máte kamennou prodejnu?", "Je možný osobní odběr v Praze?"],
        "Ano, osobní odběr je zdarma na naší prodejně Korunní 12, Praha 2, v otevírací době. Počkejte na e-mail, že je zboží připravené.",
    ),
    DemoEntry(
        "cs",
        "Doručujete i do zahraničí?",
        ["Posíláte na Slovensko?", "Doprava do Německa a Rakouska"],
        "Doručujeme na Slovensko, do Polska, Německa a Rakouska. Ceny podle země najdete na https://shop.example/doprava.",
    ),
    DemoEntry(
        "cs",
        "Jaké máte telefonní číslo?",
        ["Jak vás můžu kontaktovat?", "Můžu vám zavolat?", "Kontakt na zákaznickou podporu"],
        "Volejte +420 222 333 444 (Po–Pá 8–18) nebo pište na podpora@shop.example.",
    ),
    DemoEntry(
        "en",
        "What are your opening hours?",
        ["When are you open?", "What time do you close?", "Are you open on weekends?"],
        "Our customer service and store are open Mon–Fri 8:00–18:00 and Saturday 9:00–12:00 (Prague time). We are closed on Sundays and public holidays.",
    ),
    DemoEntry(
        "en",
        "How much does shipping cost?",
        ["What is the shipping price?", "How much are the delivery charges?", "How much is postage?"],
        "Shipping to a pickup point is 3.50 EUR, by courier 5.90 EUR within the Czech Republic and Slovakia. See https://shop.example/en/shipping for other countries.",
    ),
    DemoEntry(
        "en",
        "Do you offer free shipping?",
        ["How much do I need to spend for free delivery?", "Free shipping threshold"],
        "Shipping to a pickup point is free on orders over 60 EUR.",
    ),
    DemoEntry(
        "en",
        "How long does delivery take?",
        ["When will my order arrive?", "How many days does shipping take?", "What is the delivery time?"],
        "In-stock items leave within 24 hours on working days; delivery usually takes 1–2 working days in the Czech Republic and 2–5 days abroad.",
    ),
    DemoEntry(
        "en",
        "How can I track my order?",
        ["Where is my package?", "Where do I find the tracking number?", "What is the status of my order?"],
        "You get a tracking link by e-mail as soon as the parcel leaves. The order status is also in your account at https://shop.example/en/account.",
    ),
    DemoEntry(
        "en",
        "How do I return an item?",
        ["What is your return policy?", "Can I send it back?", "I want to return my order"],
        "You can return anything within 30 days, no reason needed. Fill in the form at https://shop.example/en/returns and send the parcel to our address.",
    ),
    DemoEntry(
        "en",
        "When will I get my refund?",
        ["How long does a refund take?", "I haven't received my money back yet"],
        "We refund within 5 working days of receiving the returned parcel, to the card or account you paid with.",
    ),
    DemoEntry(
        "en",
        "My item arrived damaged, what should I do?",
        [
            "The product is broken",
            "How do I make a complaint about a faulty product?",
            "I want to make a warranty claim",
        ],
        "Sorry about that! File a claim at https://shop.example/en/claims with photos of the damage; we usually settle it within a week.",
    ),
    DemoEntry(
        "en",
        "What payment methods do you accept?",
        ["Can I pay by card?", "Do you take PayPal?", "Can I pay with Apple Pay or Google Pay?"],
        "We accept cards, Apple Pay, Google Pay, PayPal, bank transfer and cash on delivery.",
    ),
    DemoEntry(
        "en",
        "Do you ship internationally?",
        ["Do you deliver to Germany?", "Do you ship to the UK?", "Which countries do you deliver to?"],
        "We deliver to the Czech Republic, Slovakia, Poland, Germany and Austria. We do not ship to the UK or outside the EU.",
    ),
    DemoEntry(
        "en",
        "Can I pick up my order in person?",
        ["Do you have a physical store?", "Is there click and collect?"],
        "Yes, pickup at our store at Korunní 12, Prague 2, is free during opening hours. Wait for the e-mail saying your order is ready.",
    ),
    DemoEntry(
        "en",
        "What is your phone number?",
        ["How can I contact customer support?", "Can I call you?", "What is your support e-mail address?"],
        "Call +420 222 333 444 (Mon–Fri 8–18) or write to support@shop.example.",
    ),
]
