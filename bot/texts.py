"""Everything the bot says to a learner, in simple friendly Czech, the source for translation.

Each text is marked with `__` (or, when the character says it, `as_character`) and translated
whenever it is read: `texts.X` from another module is a real `str` in the current update's
locale and character (aiogram's pydantic methods refuse a lazy proxy), so call sites stay
`message.answer(texts.X)`. Inside this module the proxies themselves are read: wrap in `str()`
what isn't `.format`-ed. Catalogs: `python -m bot.i18n extract|update|check` (see bot/i18n).
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any, cast

from babel.support import LazyProxy

from bot.i18n import as_character, czech, gettext_in, ngettext, translating
from bot.i18n import lazy as __

WELCOME = as_character(
    honzik=__(
        "Ahoj{name}! 👋 Já jsem Honzík, tvůj kamarád z Prahy.\n"
        "Pošli mi hlasovou zprávu nebo napiš něco česky a já ti odpovím. "
        "Chyby ti opravím, ale jemně. 😊\n\n"
        "Nejdřív dvě rychlé otázky, ať vím, jak s tebou mluvit. (Můžeš je přeskočit.)"
    ),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__(
        "Dobrý den{name}! 👋 Já jsem paní Nováková, vaše učitelka z Prahy.\n"
        "Pošlete mi hlasovou zprávu nebo napište něco česky a já vám odpovím. "
        "Chyby vám opravím, ale jemně. 😊\n\n"
        "Nejdřív dvě rychlé otázky, ať vím, jak s vámi mluvit. (Můžete je přeskočit.)"
    ),
)
ASK_LANGUAGE = as_character(
    honzik=__("Jaký je tvůj rodný jazyk?"),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__("Jaký je váš rodný jazyk?"),
)
ASK_LEVEL = as_character(
    honzik=__("Jak dobře už mluvíš česky?"),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__("Jak dobře už mluvíte česky?"),
)
ONBOARDING_DONE = as_character(
    honzik=__(
        "Super, všechno mám! 🎉 Teď mi pošli hlasovku nebo napiš třeba: „Ahoj, jak se máš?“\n"
        "Nastavení změníš kdykoli příkazem /settings."
    ),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__(
        "Výborně, všechno mám! 🎉 Teď mi pošlete hlasovou zprávu nebo napište třeba: "
        "„Dobrý den, jak se máte?“\n"
        "Nastavení změníte kdykoli příkazem /settings."
    ),
)
SKIP = __("Přeskočit")
SKIPPED = as_character(
    honzik=__("Dobře, použiju výchozí nastavení. Změníš ho přes /settings. Tak povídej! 🙂"),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__("Dobře, použiji výchozí nastavení. Změníte ho přes /settings. Tak povídejte! 🙂"),
)

HOW_IT_WORKS = as_character(
    honzik=__(
        "Jak to funguje:\n"
        "🎙 Pošli hlasovou zprávu nebo napiš česky. Honzík odpoví, opraví chyby a řekne to nahlas."
    ),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__(
        "Jak to funguje:\n"
        "🎙 Pošlete hlasovou zprávu nebo napište česky. Paní Nováková odpoví, opraví chyby "
        "a řekne to nahlas."
    ),
)
COMMANDS_HELP = __(
    "Příkazy:\n"
    "/start – začít znovu\n"
    "/settings – nastavení\n"
    "/level beginner|intermediate|advanced|native – úroveň\n"
    "/corrections minimal|balanced|detailed – kolik oprav\n"
    "/style friendly|tutor|casual – styl rozhovoru\n"
    "/speed very_slow|slow|normal|native – rychlost hlasu\n"
    "/character honzik|novakova – s kým mluvíš\n"
    "/voice on|off – hlasové odpovědi\n"
    "/language ru|uk|pl|sk|en|de|vi – tvůj rodný jazyk\n"
    "/ui czech|native – jazyk bota: čeština, nebo tvůj rodný jazyk\n"
    "/scenario – hrajeme scénky: v hospodě, u lékaře… (/scenario off – konec)\n"
    "/remind 19:00 – denní připomínka (/remind off – vypnout)\n"
    "/timezone – tvoje časové pásmo\n"
    "/autosave on|off – ukládat Honzíkova slovíčka hned, nebo tlačítkem ➕\n"
    "/stats – tvoje pokroky\n"
    "/words – tvoje slovíčka\n"
    "/save slovo - překlad – uložit slovíčko\n"
    "/review – opakování slovíček\n"
    "/reset – nový rozhovor nebo smazání dat\n"
    "/help – tahle nápověda"
)


def _paragraphs(*parts: str) -> str:
    """One text made of texts translated one by one, read together."""
    return cast(str, LazyProxy(lambda: "\n\n".join(map(str, parts)), enable_cache=False))


HELP = _paragraphs(HOW_IT_WORKS, COMMANDS_HELP)

COMMANDS: dict[str, str] = {
    "start": __("Začít"),
    "help": __("Nápověda"),
    "settings": __("Nastavení"),
    "stats": __("Moje pokroky"),
    "words": __("Moje slovíčka"),
    "review": __("Opakování slovíček"),
    "reset": __("Nový rozhovor / smazat data"),
    "level": __("Úroveň češtiny"),
    "voice": __("Hlasové odpovědi zapnout/vypnout"),
    "ui": __("Jazyk bota: čeština, nebo můj jazyk"),
    "scenario": __("Scénky: v hospodě, u lékaře…"),
    "remind": __("Denní připomínka"),
    "timezone": __("Moje časové pásmo"),
}

SETTINGS_TITLE = __("⚙️ Tvoje nastavení. Klepni na to, co chceš změnit:")
SETTINGS_CHOOSE = __("Vyber: {label}")
SETTING_SAVED = __("Hotovo! {label}: {value} ✅")
SETTING_CURRENT = __("{label}: {value}. Změníš to takhle: /{name} {values}")
SETTING_BAD_VALUE = __("Tomu nerozumím. 🙈 Vyber jednu z možností: {values}")
BACK = __("« Zpět")

UNKNOWN_COMMAND = as_character(
    honzik=__("Tenhle příkaz neznám. 🤔 Zkus /help."),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__("Tenhle příkaz neznám. 🤔 Zkuste /help."),
)
UNSUPPORTED_MEDIA = as_character(
    honzik=__(
        "To je hezké, ale umím jen hlasové zprávy a text. 🙂 "
        "Pošli mi hlasovku nebo napiš něco česky."
    ),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__(
        "To je hezké, ale umím jen hlasové zprávy a text. 🙂 "
        "Pošlete mi hlasovou zprávu nebo napište něco česky."
    ),
)
GROUP_CHAT = as_character(
    honzik=__("Ahoj! Povídat si umím jen v soukromém chatu. Napiš mi napřímo. 🙂"),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__("Dobrý den! Povídat si umím jen v soukromém chatu. Napište mi prosím napřímo. 🙂"),
)
STALE_BUTTON = __("Tohle tlačítko už neplatí. Zkus to znovu. 🙂")
TEMPORARILY_UNAVAILABLE = as_character(
    honzik=__("Promiň, teď mám malou technickou pauzu. 🛠 Zkus to prosím za chvilku."),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__("Promiňte, teď mám malou technickou pauzu. 🛠 Zkuste to prosím za chvilku."),
)
SOMETHING_WENT_WRONG = as_character(
    honzik=__("Jejda, něco se pokazilo. 🙈 Zkus to prosím znovu."),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__("Jejda, něco se pokazilo. 🙈 Zkuste to prosím znovu."),
)

OPTION_LABELS: dict[str, str] = {
    "level": __("Úroveň"),
    "language": __("Rodný jazyk"),
    "ui": __("Jazyk bota"),
    "style": __("Styl rozhovoru"),
    "corrections": __("Opravy"),
    "speed": __("Rychlost hlasu"),
    "character": __("Postava"),
    "voice": __("Hlasové odpovědi"),
    "autosave": __("Ukládat slovíčka hned"),
}

ON_OFF = {"on": __("Zapnuto"), "off": __("Vypnuto")}

VALUE_LABELS: dict[str, dict[str, str]] = {
    "level": {
        "beginner": __("Začátečník (A1–A2)"),
        "intermediate": __("Středně pokročilý (B1)"),
        "advanced": __("Pokročilý (B2–C1)"),
        "native": __("Rodilý mluvčí (C2)"),
    },
    # Each language in its own words: the learner must find theirs before any translation.
    "language": {
        "ru": "🇷🇺 Русский",
        "uk": "🇺🇦 Українська",
        "pl": "🇵🇱 Polski",
        "sk": "🇸🇰 Slovenčina",
        "en": "🇬🇧 English",
        "de": "🇩🇪 Deutsch",
        "vi": "🇻🇳 Tiếng Việt",
    },
    "ui": {"czech": __("🇨🇿 Čeština"), "native": __("Můj rodný jazyk")},
    "style": {"friendly": __("Přátelský"), "tutor": __("Učitel"), "casual": __("Pohodový")},
    "corrections": {
        "minimal": __("Jen to hlavní"),
        "balanced": __("Vyvážené"),
        "detailed": __("Podrobné"),
    },
    "speed": {
        "very_slow": __("Velmi pomalu"),
        "slow": __("Pomalu"),
        "normal": __("Normálně"),
        "native": __("Jako rodilý"),
    },
    "character": {"honzik": __("Honzík (tyká)"), "novakova": __("Paní Nováková (vyká)")},
    "voice": ON_OFF,
    "autosave": ON_OFF,
}


def value_label(option: str, value: str) -> str:
    return str(VALUE_LABELS.get(option, {}).get(value, value))


def welcome(first_name: str | None) -> str:
    return WELCOME.format(name=f", {first_name}" if first_name else "")


VOICE_TOO_LONG = as_character(
    honzik=__(
        "Tahle hlasovka je moc dlouhá ({seconds} s). 🙈 "
        "Pošli mi prosím kratší, nejvýš {limit} sekund."
    ),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__(
        "Tahle hlasová zpráva je moc dlouhá ({seconds} s). 🙈 "
        "Pošlete mi prosím kratší, nejvýš {limit} sekund."
    ),
)
VOICE_TOO_BIG = as_character(
    honzik=__("Ten soubor je moc velký (Telegram mi dovolí stáhnout jen 20 MB). Zkus kratší. 🙂"),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__(
        "Ten soubor je moc velký (Telegram mi dovolí stáhnout jen 20 MB). Zkuste kratší. 🙂"
    ),
)
TEXT_TOO_LONG = as_character(
    honzik=__(
        "To je dlouhý text! 📜 Zvládnu najednou nejvýš {limit} znaků. "
        "Rozděl ho prosím na kratší zprávy."
    ),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__(
        "To je dlouhý text! 📜 Zvládnu najednou nejvýš {limit} znaků. "
        "Rozdělte ho prosím na kratší zprávy."
    ),
)
NO_WORDS = as_character(
    honzik=__("Napiš mi prosím něco česky, třeba „Ahoj, jak se máš?“ 🙂"),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__("Napište mi prosím něco česky, třeba „Dobrý den, jak se máte?“ 🙂"),
)
DIDNT_CATCH = as_character(
    honzik=__("Promiň, nic jsem neslyšel. 🙉 Zkus to prosím znovu a mluv blíž k mikrofonu."),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__(
        "Promiňte, nic jsem neslyšela. 🙉 Zkuste to prosím znovu a mluvte blíž k mikrofonu."
    ),
)
CANT_HEAR = as_character(
    honzik=__("Tuhle nahrávku neumím přehrát. 🎧 Pošli mi prosím normální hlasovou zprávu."),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__("Tuhle nahrávku neumím přehrát. 🎧 Pošlete mi prosím normální hlasovou zprávu."),
)
TRY_AGAIN = as_character(
    honzik=__(
        "Promiň, teď se mi nedaří odpovědět. 🙈 Tvoje zpráva je uložená, "
        "zkus to prosím za chvilku znovu."
    ),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__(
        "Promiňte, teď se mi nedaří odpovědět. 🙈 Vaše zpráva je uložená, "
        "zkuste to prosím za chvilku znovu."
    ),
)
EDITED = as_character(
    honzik=__("Upravené zprávy nečtu. 🙂 Pošli mi prosím novou zprávu."),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__("Upravené zprávy nečtu. 🙂 Pošlete mi prosím novou zprávu."),
)

HEARD = "🗣 „{text}“"
SCORE = __("✅ Skóre: {score}/100")
CORRECTIONS_TITLE = __("✏️ Opravy:")
CORRECTION = "• {original} → {corrected} ({explanation})"
TIP = "💡 {tip}"
SAVED_WORDS = __("📚 Nová slovíčka: {words}")
SUGGESTED_WORDS = __("📚 Můžeš si uložit: {words}")
MAX_CORRECTIONS = 3


def reply_text(
    reply: str,
    score: int,
    mistakes: list[tuple[str, str, str]],
    tip: str | None,
    saved_words: list[str],
    heard: str | None = None,
    corrected: str | None = None,
    suggested: Sequence[str] = (),
) -> str:
    """Honzík's answer, then the score, the corrected sentence and at most three corrections;
    last the words: `saved_words` are in the learner's list already, `suggested` words are
    theirs to save with the ➕ button."""
    parts = [HEARD.format(text=heard)] if heard else []
    parts += [reply, "", SCORE.format(score=score)]
    if mistakes:
        if corrected:
            parts.append(CORRECTED.format(text=corrected))
        parts.append(str(CORRECTIONS_TITLE))
        parts += [
            CORRECTION.format(original=o, corrected=c, explanation=e)
            for o, c, e in mistakes[:MAX_CORRECTIONS]
        ]
    if tip:
        parts.append(TIP.format(tip=tip))
    if saved_words:
        parts.append(SAVED_WORDS.format(words=", ".join(saved_words)))
    if suggested:
        parts.append(SUGGESTED_WORDS.format(words=", ".join(suggested)))
    return "\n".join(parts)


MESSAGE_LIMIT = 4096
ALERT_LIMIT = 200  # a callback answer's text
"""Characters of one Telegram message. The bot sends plain text (no parse_mode), so the
string is what Telegram counts, and a cut anywhere breaks no entity."""
ELLIPSIS = "…"


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """`text` as messages of at most `limit` characters, for an answer of any length.

    Each cut is at a paragraph or a line break in the second half of the message, else at
    the last space, else anywhere; only whitespace at the cuts is lost.
    """
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[: limit + 1]
        breaks = (at for sep in ("\n\n", "\n") if (at := window.rfind(sep)) > limit // 2)
        cut = next(breaks, window.rfind(" "))
        if cut <= 0:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return [*parts, rest] if rest else parts


def shorten(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """`text` in at most `limit` characters, cut at a space and ended with an ellipsis: for
    what can't be split (an edited message, the text of one voice)."""
    if len(text) <= limit:
        return text
    head = text[: limit - len(ELLIPSIS)]
    if not text[len(head)].isspace() and (space := head.rfind(" ")) > len(head) // 2:
        head = head[:space]
    return head.rstrip() + ELLIPSIS


# TRANSLATORS: short weekday names, Monday to Sunday, as in "po 3.11." (a day in /stats).
WEEKDAYS = (__("po"), __("út"), __("st"), __("čt"), __("pá"), __("so"), __("ne"))


def plural(count: int, one: str, few: str, many: str) -> str:
    """Czech plural forms: 1 den, 2 dny, 5 dní (and 0 dní)."""
    if count == 1:
        return f"{count} {one}"
    if 2 <= count <= 4:
        return f"{count} {few}"
    return f"{count} {many}"


# Czech, the source, has three forms where gettext's source has two: in Czech the count is
# worded by `plural`, in any other language by its catalog's Plural-Forms (3 in uk and ru).
def days_count(count: int) -> str:
    if translating():
        return ngettext("{count} den", "{count} dní", count).format(count=count)
    return plural(count, "den", "dny", "dní")


def messages_count(count: int) -> str:
    if translating():
        return ngettext("{count} zpráva", "{count} zpráv", count).format(count=count)
    return plural(count, "zpráva", "zprávy", "zpráv")


def words_count(count: int) -> str:
    if translating():
        return ngettext("{count} slovo", "{count} slov", count).format(count=count)
    return plural(count, "slovo", "slova", "slov")


def vocabulary_count(count: int) -> str:
    if translating():
        return ngettext("{count} slovíčko", "{count} slovíček", count).format(count=count)
    return plural(count, "slovíčko", "slovíčka", "slovíček")


def duration(seconds: float) -> str:
    whole = round(seconds)
    minutes, rest = divmod(whole, 60)
    if minutes:
        return __("{minutes} min {seconds} s").format(minutes=minutes, seconds=rest)
    return __("{seconds} s").format(seconds=rest)


def short_date(day: dt.date) -> str:
    return f"{WEEKDAYS[day.weekday()]} {day.day}.{day.month}."


CHART_TITLE = __("Zprávy za posledních 14 dní")
STATS_TITLE = __("📊 Tvoje pokroky")
STATS_TODAY = __("Dnes: {messages} (hlasem {voice}), {words}, mluvení {spoken}")
STATS_TODAY_EMPTY = as_character(
    honzik=__("Dnes jsi ještě nic neřekl(a). Pošli mi hlasovku! 🎙"),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__("Dnes jste ještě nic neřekl(a). Pošlete mi hlasovou zprávu! 🎙"),
)
STATS_TODAY_SCORE = __("Průměrné skóre dnes: {score}/100, nová slovíčka: {new_words}")
STATS_STREAK = __("🔥 Série: {current} · nejlepší: {best}")
STATS_STREAK_BROKEN = __("💔 Tvoje série se přerušila. Dnes můžeš začít novou! (nejlepší: {best})")
STATS_STREAK_NONE = __("🔥 Začni sérii ještě dnes! Stačí jedna zpráva denně.")
STATS_WEEK = __("Posledních 7 dní:")
STATS_DAY = "{day}  {bar} {count}"
STATS_TOTALS = __("Celkem: {messages}, {days} aktivně, {vocabulary}")
STATS_TOTALS_SCORE = __("Průměrné skóre celkem: {score}/100")
STATS_SCENES = __("🎭 Procvičené scénky: {count} z {total} (/scenario)")

SAVE_USAGE = __("Napiš to takhle: /save slovo - překlad\nNapříklad: /save pivo - beer")
WORD_SAVED = __("Uloženo! 📚 {word} – {translation}")
WORD_EXISTS = __("Slovíčko „{word}“ už máš uložené. 🙂")
WORDS_EMPTY = as_character(
    honzik=__(
        "Zatím nemáš žádná slovíčka. 📚 Povídej si s Honzíkem, nebo si ulož vlastní: "
        "/save slovo - překlad"
    ),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__(
        "Zatím nemáte žádná slovíčka. 📚 Povídejte si se mnou, nebo si uložte vlastní: "
        "/save slovo - překlad"
    ),
)
WORDS_TITLE = __("📚 Tvoje slovíčka ({count}), strana {page}/{pages}:")
WORD_LINE = "• {word} – {translation}"
PREVIOUS = "◀"
NEXT = "▶"
DELETE_WORD = "🗑 {word}"
WORD_DELETED = __("Smazáno: {word} 🗑")

REVIEW_NOTHING_DUE = __("Dnes nemáš nic k opakování. 🎉 Další slovíčka na tebe čekají {when}.")
REVIEW_CARD = __("🃏 {word}\n\n(zbývá: {left})")
REVIEW_ANSWER = "🃏 {word}\n\n➡️ {translation}"
REVIEW_EXAMPLE = "💬 {example}"
REVIEW_SHOW = __("Ukázat překlad 👀")
REVIEW_DONE = __("Hotovo, pro dnešek máš zopakováno! 🎉 Další slovíčka na tebe čekají {when}.")
# TRANSLATORS: {words} is a count of words, e.g. "12 slovíček", new ones held back until tomorrow
# (at most 20 new words a day).
NEW_WAITING = __("🆕 Na zítra máš ještě {words} k naučení.")
GRADE_LABELS = {
    "again": __("Znovu"),
    "hard": __("Těžké"),
    "good": __("Dobré"),
    "easy": __("Snadné"),
}
TODAY = __("dnes")
TOMORROW = __("zítra")

RESET_MENU = __("Co chceš udělat?")
RESET_CONVERSATION = __("🆕 Nový rozhovor")
RESET_DATA = __("🗑 Smazat všechna moje data")
RESET_CONFIRM = __(
    "Opravdu smazat všechny tvoje zprávy, statistiky a slovíčka? Nejde to vrátit. 😟"
)
RESET_YES = __("Ano, smazat")
RESET_NO = __("Ne, nechat")
RESET_CONVERSATION_DONE = as_character(
    honzik=__("Dobře, začínáme znovu! 🙂 O čem si povídáme?"),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__("Dobře, začínáme znovu! 🙂 O čem si budeme povídat?"),
)
RESET_DATA_DONE = __("Hotovo, všechno je smazané. Můžeme začít od nuly. 🙂")
RESET_CANCELLED = as_character(
    honzik=__("V pořádku, nic jsem nesmazal. 🙂"),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__("V pořádku, nic jsem nesmazala. 🙂"),
)


def when(day: dt.date | None, today: dt.date) -> str:
    if day is None or day <= today:
        return str(TODAY)
    if day == today + dt.timedelta(days=1):
        return str(TOMORROW)
    return f"{day.day}.{day.month}."


ADMIN_ONLY = __("Promiň, tohle je jen pro správce bota. 🙂")
FLUSH_USAGE = __("Použití: /cache_flush [{families}]")
FLUSHED = __("🧹 Smazáno klíčů v cache: {count} ({families}).")
REDIS_DOWN = __("Redis teď není dostupný, cache nejde spravovat. Bot běží dál bez ní.")
CACHE_DISABLED = __("Cache je vypnutá (CACHE_ENABLED=false).")
CACHE_STATS_TITLE = __("📈 Cache (všechny repliky od startu)")
CACHE_STATS_FAMILY = __("{family}: {hits} zásahů / {misses} minutí ({rate} %), klíčů: {keys}")
CACHE_STATS_MEMORY = __("Paměť Redis: {memory}")
CACHE_STATS_SAVED = __("Ušetřená volání OpenAI: {calls} ≈ ${dollars:.2f}")
RATE_LIMITED = as_character(
    honzik=__("Pomalu, pomalu! 🐢 Posíláš moc zpráv najednou. Zkus to prosím za minutku."),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__("Pomalu, pomalu! 🐢 Posíláte moc zpráv najednou. Zkuste to prosím za minutku."),
)
DAILY_LIMIT = __("Pro dnešek jsme si toho řekli hodně! 😊 Pokračujeme zítra.")


def revealed_card(word: str, translation: str, example: str | None) -> str:
    """The card's answer side: it is an edit, which can't be split, so it is shortened to fit."""
    lines = [REVIEW_ANSWER.format(word=word, translation=translation)]
    if example:
        lines.append(REVIEW_EXAMPLE.format(example=example))
    return shorten("\n".join(lines))


SCENARIO_MENU = as_character(
    honzik=__("🎭 Vyber si situaci a zahrajeme si ji: já budu hrát druhou stranu."),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__("🎭 Vyberte si situaci a zahrajeme si ji: já budu hrát druhou stranu."),
)
# TRANSLATORS: button labels and names of the role-play scenes (/scenario).
SCENE_LABELS = {
    "pub": __("🍺 V hospodě"),
    "doctor": __("🩺 U lékaře"),
    "station": __("🚉 Na nádraží"),
    "foreign_police": __("🛂 Na cizinecké policii"),
    "shop": __("🛒 V obchodě"),
    "job_interview": __("💼 Pracovní pohovor"),
    "flat": __("🏠 Pronájem bytu"),
    "hairdresser": __("💇 U kadeřníka"),
}
SCENE_OFF = __("💬 Volný rozhovor")
SCENE_STARTED = as_character(
    honzik=__("Scénka: {scene}. Odpovídej, jako bys tam opravdu byl(a)! Konec: /scenario off"),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__(
        "Scénka: {scene}. Odpovídejte, jako byste tam opravdu byl(a)! Konec: /scenario off"
    ),
)
SCENE_NO_OPENING = as_character(
    honzik=__("Teď mi nejde začít. 🙈 Začni ty: napiš mi nebo pošli hlasovku!"),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__("Teď se mi nedaří začít. 🙈 Začněte vy: napište mi nebo pošlete hlasovou zprávu!"),
)
SCENE_ENDED = __("Konec scénky. 💬 Teď si zase povídáme, o čem chceme.")

ASK_REMINDER = as_character(
    honzik=__(
        "Poslední otázka: mám ti každý den připomenout, ať si spolu chvíli povídáme? "
        "Napíšu jen tehdy, když jsme si ten den ještě nepovídali. ⏰"
    ),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__(
        "Poslední otázka: mám vám každý den připomenout, ať si spolu chvíli povídáme? "
        "Napíšu jen tehdy, když jsme si ten den ještě nepovídali. ⏰"
    ),
)
REMIND_NO = __("Ne, díky")
REMIND_SET = __(
    "⏰ Platí! Každý den v {time} (pásmo {zone}) ti napíšu, pokud si ten den ještě nebudeme "
    "povídat. Vypnout: /remind off"
)
REMIND_OFF = __("Dobře, žádné připomínky. Zapnout je můžeš kdykoli, třeba /remind 19:00.")
REMIND_CURRENT = __(
    "⏰ Připomínám ti každý den v {time} (pásmo {zone}). "
    "Jiný čas: /remind 20:30, vypnout: /remind off"
)
REMIND_NONE = __("Připomínky máš vypnuté. Vyber čas, nebo napiš třeba /remind 19:00:")
REMIND_BAD = __("Napiš čas jako 19:00, nebo /remind off.")
REMIND_QUIET = __("Mezi 22:00 a 8:00 nepíšu, ať se v klidu vyspíš. 😴 Vyber čas od 8:00 do 21:59.")
TIMEZONE_CURRENT = __(
    "🕐 Tvoje časové pásmo: {zone} (teď tam je {time}). Vyber jiné, "
    "nebo ho napiš, třeba /timezone Europe/Kyiv."
)
TIMEZONE_SET = __("🕐 Hotovo: tvůj den teď běží podle pásma {zone}, kde je právě {time}.")
TIMEZONE_UNKNOWN = __(
    "Tohle časové pásmo neznám. 🙈 Napiš ho anglicky jako Oblast/Město, "
    "třeba /timezone Europe/Kyiv, nebo vyber:"
)
ZONE_LABELS: dict[str, str] = {
    "Europe/Prague": __("🇨🇿 Praha"),
    "Europe/Kyiv": __("🇺🇦 Kyjev"),
    "Europe/Warsaw": __("🇵🇱 Varšava"),
    "Europe/Moscow": __("🇷🇺 Moskva"),
    "Europe/London": __("🇬🇧 Londýn"),
    "Europe/Berlin": __("🇩🇪 Berlín"),
    "Asia/Ho_Chi_Minh": __("🇻🇳 Hanoj"),
}
REMINDER = as_character(
    honzik=__(
        "Ahoj! 👋 Dneska jsme si ještě nepovídali. Pošli mi hlasovku nebo napiš pár vět česky!"
        "\n\n💬 Fráze dne: {phrase}\n➡️ {meaning}"
    ),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__(
        "Dobrý den! 👋 Dnes jsme si ještě nepovídali. Pošlete mi hlasovou zprávu nebo napište "
        "pár vět česky!\n\n💬 Fráze dne: {phrase}\n➡️ {meaning}"
    ),
)
REMINDER_STREAK = as_character(
    honzik=__("🔥 Máš sérii {days}: napiš mi dnes, ať nepřijde nazmar!"),
    # TRANSLATORS: paní Nováková speaks: formal (Vy), feminine past tense.
    novakova=__("🔥 Máte sérii {days}: napište mi dnes, ať nepřijde nazmar!"),
)
# TRANSLATORS: the phrase of the day: a Czech phrase a reminder teaches. Translate its meaning
# (an idiom by its sense, not word for word); the learner sees the Czech next to it.
PHRASES = (
    czech("Mám hlad jako vlk."),
    czech("To je mi jedno."),
    czech("Dáme si kafe?"),
    czech("Kolik to stojí?"),
    czech("Nemám čas, spěchám."),
    czech("To nevadí."),
    czech("Mluvte prosím pomaleji."),
    czech("Můžete to zopakovat?"),
    czech("Na zdraví!"),
    czech("Dobrou chuť!"),
    czech("Jak se máš?"),
    czech("Mám se fajn, díky."),
    czech("Kde je nejbližší zastávka?"),
    czech("Zaplatím kartou."),
    czech("Je tu volno?"),
    czech("Těší mě."),
    czech("Hodně štěstí!"),
    czech("To je dobrý nápad."),
    czech("Nerozumím, můžete mi to vysvětlit?"),
    czech("Uvidíme se zítra."),
    czech("Bez práce nejsou koláče."),
)
# TRANSLATORS: the whole sentence the learner said, corrected.
CORRECTED = __("✔️ Správně: {text}")
TRANSLATE = __("🌐 Přeložit")
HEAR = __("🔊 Poslechnout správně")
TRANSLATION = "🌐 {text}"
TRANSLATION_FAILED = __("Překlad teď nejde, zkus to prosím za chvilku. 🙈")
SAVE_WORDS = __("➕ Uložit slovíčka")
WORDS_SAVED = __("Uloženo! 📚 {words}")
WORDS_ALREADY_SAVED = __("Tahle slovíčka už máš uložená. 🙂")

STATS_FREEZES = __("🧊 Mrazáky: {count} z {most}. Každý ti podrží sérii, když jeden den vynecháš.")
STATS_FREEZES_NONE = __("🧊 Za každých 7 dní v řadě dostaneš mrazák: podrží ti sérii.")
STATS_MISTAKES = __("✏️ Na co si dát pozor (posledních 7 dní):")
STATS_MISTAKE = "• {category} ({count}×): {original} → {corrected}"
MISTAKE_LABELS: dict[str, str] = {
    "case": __("Pády"),
    "verb_form": __("Tvary sloves"),
    "agreement": __("Shoda"),
    "word_order": __("Slovosled"),
    "vocabulary": __("Slovíčka a předložky"),
    "spelling": __("Pravopis"),
    "register": __("Tykání a vykání"),
    "other": __("Ostatní"),
}
STATS_NO_CHART = __("📈 Graf tvých pokroků tu bude, jakmile mi napíšeš. Tak co, jak se máš?")


def reminder(day: dt.date, streak_days: int, meaning_locale: str) -> str:
    """The daily reminder, its phrase the same for everyone on `day`; the phrase's meaning is
    in `meaning_locale` even for a learner who reads the bot in Czech. `streak_days` > 0:
    the streak ends tonight unless they write."""
    czech_phrase = phrase_of_the_day(day)
    text = REMINDER.format(phrase=czech_phrase, meaning=gettext_in(meaning_locale, czech_phrase))
    if streak_days:
        text += "\n\n" + REMINDER_STREAK.format(days=days_count(streak_days))
    return text


def phrase_of_the_day(day: dt.date) -> str:
    """One Czech phrase per date, in turn: the phrase whose voice is synthesised that day."""
    return PHRASES[day.toordinal() % len(PHRASES)]


def _read(value: Any) -> Any:
    """A text (or a table of texts) as the current update reads it."""
    if isinstance(value, LazyProxy):
        return str(value)
    if isinstance(value, dict):
        return {key: _read(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(_read(item) for item in value)
    return value


class _Translated(ModuleType):
    """`texts.X` read from outside: the text in the current locale and voice, as a `str`."""

    def __getattribute__(self, name: str) -> Any:
        return _read(super().__getattribute__(name))


sys.modules[__name__].__class__ = _Translated
