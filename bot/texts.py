"""Everything the bot says to a learner, in simple friendly Czech, kept here for translation."""

from __future__ import annotations

import datetime as dt

WELCOME = (
    "Ahoj{name}! 👋 Já jsem Honzík, tvůj kamarád z Prahy.\n"
    "Pošli mi hlasovou zprávu nebo napiš něco česky a já ti odpovím. "
    "Chyby ti opravím, ale jemně. 😊\n\n"
    "Nejdřív dvě rychlé otázky, ať vím, jak s tebou mluvit. (Můžeš je přeskočit.)"
)
ASK_LANGUAGE = "Jaký je tvůj rodný jazyk?"
ASK_LEVEL = "Jak dobře už mluvíš česky?"
ONBOARDING_DONE = (
    "Super, všechno mám! 🎉 Teď mi pošli hlasovku nebo napiš třeba: „Ahoj, jak se máš?“\n"
    "Nastavení změníš kdykoli příkazem /settings."
)
SKIP = "Přeskočit"
SKIPPED = "Dobře, použiju výchozí nastavení. Změníš ho přes /settings. Tak povídej! 🙂"

HELP = (
    "Jak to funguje:\n"
    "🎙 Pošli hlasovou zprávu nebo napiš česky. Honzík odpoví, opraví chyby a řekne to nahlas.\n\n"
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
    "/stats – tvoje pokroky\n"
    "/words – tvoje slovíčka\n"
    "/save slovo - překlad – uložit slovíčko\n"
    "/review – opakování slovíček\n"
    "/reset – nový rozhovor nebo smazání dat\n"
    "/help – tahle nápověda"
)

COMMANDS: dict[str, str] = {
    "start": "Začít",
    "help": "Nápověda",
    "settings": "Nastavení",
    "stats": "Moje pokroky",
    "words": "Moje slovíčka",
    "review": "Opakování slovíček",
    "reset": "Nový rozhovor / smazat data",
    "level": "Úroveň češtiny",
    "voice": "Hlasové odpovědi zapnout/vypnout",
}

SETTINGS_TITLE = "⚙️ Tvoje nastavení. Klepni na to, co chceš změnit:"
SETTINGS_CHOOSE = "Vyber: {label}"
SETTING_SAVED = "Hotovo! {label}: {value} ✅"
SETTING_CURRENT = "{label}: {value}. Změníš to takhle: /{name} {values}"
SETTING_BAD_VALUE = "Tomu nerozumím. 🙈 Vyber jednu z možností: {values}"
BACK = "« Zpět"

UNKNOWN_COMMAND = "Tenhle příkaz neznám. 🤔 Zkus /help."
UNSUPPORTED_MEDIA = (
    "To je hezké, ale umím jen hlasové zprávy a text. 🙂 Pošli mi hlasovku nebo napiš něco česky."
)
GROUP_CHAT = "Ahoj! Povídat si umím jen v soukromém chatu. Napiš mi napřímo. 🙂"
STALE_BUTTON = "Tohle tlačítko už neplatí. Zkus to znovu. 🙂"
TEMPORARILY_UNAVAILABLE = "Promiň, teď mám malou technickou pauzu. 🛠 Zkus to prosím za chvilku."
SOMETHING_WENT_WRONG = "Jejda, něco se pokazilo. 🙈 Zkus to prosím znovu."

OPTION_LABELS: dict[str, str] = {
    "level": "Úroveň",
    "language": "Rodný jazyk",
    "style": "Styl rozhovoru",
    "corrections": "Opravy",
    "speed": "Rychlost hlasu",
    "character": "Postava",
    "voice": "Hlasové odpovědi",
}

VALUE_LABELS: dict[str, dict[str, str]] = {
    "level": {
        "beginner": "Začátečník (A1–A2)",
        "intermediate": "Středně pokročilý (B1)",
        "advanced": "Pokročilý (B2–C1)",
        "native": "Rodilý mluvčí (C2)",
    },
    "language": {
        "ru": "🇷🇺 Русский",
        "uk": "🇺🇦 Українська",
        "pl": "🇵🇱 Polski",
        "sk": "🇸🇰 Slovenčina",
        "en": "🇬🇧 English",
        "de": "🇩🇪 Deutsch",
        "vi": "🇻🇳 Tiếng Việt",
    },
    "style": {"friendly": "Přátelský", "tutor": "Učitel", "casual": "Pohodový"},
    "corrections": {"minimal": "Jen to hlavní", "balanced": "Vyvážené", "detailed": "Podrobné"},
    "speed": {
        "very_slow": "Velmi pomalu",
        "slow": "Pomalu",
        "normal": "Normálně",
        "native": "Jako rodilý",
    },
    "character": {"honzik": "Honzík (tyká)", "novakova": "Paní Nováková (vyká)"},
    "voice": {"on": "Zapnuto", "off": "Vypnuto"},
}


def value_label(option: str, value: str) -> str:
    return VALUE_LABELS.get(option, {}).get(value, value)


def welcome(first_name: str | None) -> str:
    return WELCOME.format(name=f", {first_name}" if first_name else "")


VOICE_TOO_LONG = (
    "Tahle hlasovka je moc dlouhá ({seconds} s). 🙈 Pošli mi prosím kratší, nejvýš {limit} sekund."
)
VOICE_TOO_BIG = "Ten soubor je moc velký (Telegram mi dovolí stáhnout jen 20 MB). Zkus kratší. 🙂"
TEXT_TOO_LONG = (
    "To je dlouhý text! 📜 Zvládnu najednou nejvýš {limit} znaků. "
    "Rozděl ho prosím na kratší zprávy."
)
NO_WORDS = "Napiš mi prosím něco česky, třeba „Ahoj, jak se máš?“ 🙂"
DIDNT_CATCH = "Promiň, nic jsem neslyšel. 🙉 Zkus to prosím znovu a mluv blíž k mikrofonu."
CANT_HEAR = "Tuhle nahrávku neumím přehrát. 🎧 Pošli mi prosím normální hlasovou zprávu."
TRY_AGAIN = (
    "Promiň, teď se mi nedaří odpovědět. 🙈 Tvoje zpráva je uložená, "
    "zkus to prosím za chvilku znovu."
)
EDITED = "Upravené zprávy nečtu. 🙂 Pošli mi prosím novou zprávu."

HEARD = "🗣 „{text}“"
SCORE = "✅ Skóre: {score}/100"
CORRECTIONS_TITLE = "✏️ Opravy:"
CORRECTION = "• {original} → {corrected} ({explanation})"
TIP = "💡 {tip}"
SAVED_WORDS = "📚 Nová slovíčka: {words}"
MAX_CORRECTIONS = 3


def reply_text(
    reply: str,
    score: int,
    mistakes: list[tuple[str, str, str]],
    tip: str | None,
    saved_words: list[str],
    heard: str | None = None,
) -> str:
    """Honzík's answer, then the score and at most three corrections, compactly."""
    parts = [HEARD.format(text=heard)] if heard else []
    parts += [reply, "", SCORE.format(score=score)]
    if mistakes:
        parts.append(CORRECTIONS_TITLE)
        parts += [
            CORRECTION.format(original=o, corrected=c, explanation=e)
            for o, c, e in mistakes[:MAX_CORRECTIONS]
        ]
    if tip:
        parts.append(TIP.format(tip=tip))
    if saved_words:
        parts.append(SAVED_WORDS.format(words=", ".join(saved_words)))
    return "\n".join(parts)


MESSAGE_LIMIT = 4096
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


WEEKDAYS = ("po", "út", "st", "čt", "pá", "so", "ne")


def plural(count: int, one: str, few: str, many: str) -> str:
    """Czech plural forms: 1 den, 2 dny, 5 dní (and 0 dní)."""
    if count == 1:
        return f"{count} {one}"
    if 2 <= count <= 4:
        return f"{count} {few}"
    return f"{count} {many}"


def days_count(count: int) -> str:
    return plural(count, "den", "dny", "dní")


def messages_count(count: int) -> str:
    return plural(count, "zpráva", "zprávy", "zpráv")


def words_count(count: int) -> str:
    return plural(count, "slovo", "slova", "slov")


def vocabulary_count(count: int) -> str:
    return plural(count, "slovíčko", "slovíčka", "slovíček")


def duration(seconds: float) -> str:
    whole = round(seconds)
    minutes, rest = divmod(whole, 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def short_date(day: dt.date) -> str:
    return f"{WEEKDAYS[day.weekday()]} {day.day}.{day.month}."


STATS_TITLE = "📊 Tvoje pokroky"
STATS_TODAY = "Dnes: {messages} (hlasem {voice}), {words}, mluvení {spoken}"
STATS_TODAY_EMPTY = "Dnes jsi ještě nic neřekl(a). Pošli mi hlasovku! 🎙"
STATS_TODAY_SCORE = "Průměrné skóre dnes: {score}/100, nová slovíčka: {new_words}"
STATS_STREAK = "🔥 Série: {current} · nejlepší: {best}"
STATS_STREAK_BROKEN = "💔 Tvoje série se přerušila. Dnes můžeš začít novou! (nejlepší: {best})"
STATS_STREAK_NONE = "🔥 Začni sérii ještě dnes! Stačí jedna zpráva denně."
STATS_WEEK = "Posledních 7 dní:"
STATS_DAY = "{day}  {bar} {count}"
STATS_TOTALS = "Celkem: {messages}, {days} aktivně, {vocabulary}"
STATS_TOTALS_SCORE = "Průměrné skóre celkem: {score}/100"

SAVE_USAGE = "Napiš to takhle: /save slovo - překlad\nNapříklad: /save pivo - beer"
WORD_SAVED = "Uloženo! 📚 {word} – {translation}"
WORD_EXISTS = "Slovíčko „{word}“ už máš uložené. 🙂"
WORDS_EMPTY = (
    "Zatím nemáš žádná slovíčka. 📚 Povídej si s Honzíkem, nebo si ulož vlastní: "
    "/save slovo - překlad"
)
WORDS_TITLE = "📚 Tvoje slovíčka ({count}), strana {page}/{pages}:"
WORD_LINE = "• {word} – {translation}"
PREVIOUS = "◀"
NEXT = "▶"

REVIEW_NOTHING_DUE = "Dnes nemáš nic k opakování. 🎉 Další slovíčka na tebe čekají {when}."
REVIEW_CARD = "🃏 {word}\n\n(zbývá: {left})"
REVIEW_ANSWER = "🃏 {word}\n\n➡️ {translation}"
REVIEW_EXAMPLE = "💬 {example}"
REVIEW_SHOW = "Ukázat překlad 👀"
REVIEW_DONE = "Hotovo, pro dnešek máš zopakováno! 🎉 Další slovíčka na tebe čekají {when}."
GRADE_LABELS = {"again": "Znovu", "hard": "Těžké", "good": "Dobré", "easy": "Snadné"}
TODAY = "dnes"
TOMORROW = "zítra"

RESET_MENU = "Co chceš udělat?"
RESET_CONVERSATION = "🆕 Nový rozhovor"
RESET_DATA = "🗑 Smazat všechna moje data"
RESET_CONFIRM = "Opravdu smazat všechny tvoje zprávy, statistiky a slovíčka? Nejde to vrátit. 😟"
RESET_YES = "Ano, smazat"
RESET_NO = "Ne, nechat"
RESET_CONVERSATION_DONE = "Dobře, začínáme znovu! 🙂 O čem si povídáme?"
RESET_DATA_DONE = "Hotovo, všechno je smazané. Můžeme začít od nuly. 🙂"
RESET_CANCELLED = "V pořádku, nic jsem nesmazal. 🙂"


def when(day: dt.date | None, today: dt.date) -> str:
    if day is None or day <= today:
        return TODAY
    if day == today + dt.timedelta(days=1):
        return TOMORROW
    return f"{day.day}.{day.month}."


ADMIN_ONLY = "Promiň, tohle je jen pro správce bota. 🙂"
FLUSH_USAGE = "Použití: /cache_flush [{families}]"
FLUSHED = "🧹 Smazáno klíčů v cache: {count} ({families})."
REDIS_DOWN = "Redis teď není dostupný, cache nejde spravovat. Bot běží dál bez ní."
CACHE_DISABLED = "Cache je vypnutá (CACHE_ENABLED=false)."
CACHE_STATS_TITLE = "📈 Cache (všechny repliky od startu)"
CACHE_STATS_FAMILY = "{family}: {hits} zásahů / {misses} minutí ({rate} %), klíčů: {keys}"
CACHE_STATS_MEMORY = "Paměť Redis: {memory}"
CACHE_STATS_SAVED = "Ušetřená volání OpenAI: {calls} ≈ ${dollars:.2f}"
RATE_LIMITED = "Pomalu, pomalu! 🐢 Posíláš moc zpráv najednou. Zkus to prosím za minutku."
DAILY_LIMIT = "Pro dnešek jsme si toho řekli hodně! 😊 Pokračujeme zítra."


def revealed_card(word: str, translation: str, example: str | None) -> str:
    """The card's answer side: it is an edit, which can't be split, so it is shortened to fit."""
    lines = [REVIEW_ANSWER.format(word=word, translation=translation)]
    if example:
        lines.append(REVIEW_EXAMPLE.format(example=example))
    return shorten("\n".join(lines))
