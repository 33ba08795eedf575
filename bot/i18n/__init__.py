"""The bot's own texts in the learner's language, and in the chosen character's voice.

gettext catalogs (`bot/locales/{locale}/LC_MESSAGES/messages.po`) are compiled in memory when
first needed, so no binary file is kept in the repository and no build step can be forgotten.
Czech is the source: a text without a translation, or read outside any update, stays Czech.
"""

from __future__ import annotations

import functools
import gettext as gnu
import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import cast

from aiogram.utils.i18n import I18n
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import LazyProxy

from bot.domain import Character, LearnerSettings, Profile, UiLanguage, ui_language_of

LOCALES = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"
SOURCE = "cs"
FALLBACK = "en"
"""For a native language without a catalog of its own (pl, sk, de, vi for now)."""
REQUIRED = ("en", "uk", "ru")
"""Catalogs that must translate every text: `python -m bot.i18n check` and the tests say so."""

_character: ContextVar[Character] = ContextVar("character", default=Character.HONZIK)


class Catalogs(I18n):
    """aiogram's I18n, reading the .po files themselves (aiogram's reads compiled .mo files)."""

    def find_locales(self) -> dict[str, gnu.GNUTranslations]:
        return {
            po.parent.parent.name: compile_po(po)
            for po in sorted(self.path.glob(f"*/LC_MESSAGES/{self.domain}.po"))
        }


def compile_po(path: Path) -> gnu.GNUTranslations:
    """One catalog as Python's gettext reads it; fuzzy entries are left out, as msgfmt does."""
    with path.open("rb") as po:
        catalog = read_po(po)
    mo = io.BytesIO()
    write_mo(mo, catalog)
    mo.seek(0)
    return gnu.GNUTranslations(mo)


@functools.cache
def catalogs() -> Catalogs:
    return Catalogs(path=LOCALES, default_locale=SOURCE, domain=DOMAIN)


def locale_for(profile: Profile, settings: LearnerSettings) -> str:
    """The learner's locale: their native language's (`/ui native`, or English when it has no
    catalog), or Czech (`/ui czech`); see `ui_language_of` for the default."""
    if ui_language_of(profile.level, settings.ui_language) is UiLanguage.CZECH:
        return SOURCE
    return meaning_locale(profile)


def locale_of_app(language_code: str | None) -> str:
    """For someone not loaded as a learner (the database is down): their Telegram app's
    language if it has a catalog, else Czech."""
    language = (language_code or "").split("-")[0].lower()
    return language if language in catalogs().locales else SOURCE


@contextmanager
def speaking_to(profile: Profile, settings: LearnerSettings) -> Iterator[None]:
    """Texts read inside are for this learner: for what follows a change of their settings."""
    with speaking(locale_for(profile, settings), settings.character):
        yield


@contextmanager
def speaking(locale: str, character: Character = Character.HONZIK) -> Iterator[None]:
    """Texts read inside are in `locale` (Czech if it has no catalog) and `character`'s voice."""
    i18n = catalogs()
    token = _character.set(character)
    try:
        with i18n.context(), i18n.use_locale(locale):
            yield
    finally:
        _character.reset(token)


def gettext(message: str) -> str:
    i18n = Catalogs.get_current(no_error=True)
    return message if i18n is None else i18n.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    i18n = Catalogs.get_current(no_error=True)
    if i18n is None:
        return singular if n == 1 else plural
    return i18n.gettext(singular, plural, n)


def czech(message: str) -> str:
    """Marks Czech that is shown in Czech, with its meaning from the catalogs beside it (the
    phrase of the day): extracted like `lazy`, translated only by `gettext_in`."""
    return message


def gettext_in(locale: str, message: str) -> str:
    """`message` in `locale`, whatever the current update's locale is."""
    return catalogs().gettext(message, locale=locale)


def meaning_locale(profile: Profile) -> str:
    """The locale that explains Czech to this learner: their native language's catalog, else
    English; used where Czech is shown with its meaning whatever `/ui` says."""
    native = profile.native_language.value
    return native if native in catalogs().locales else FALLBACK


def translating() -> bool:
    """Whether texts are read from a catalog now, rather than in the Czech source."""
    i18n = Catalogs.get_current(no_error=True)
    return i18n is not None and i18n.current_locale in i18n.locales


def lazy(message: str) -> str:
    """`message`, translated each time it is read (see `bot.texts`: a real str when read)."""
    return cast(str, LazyProxy(gettext, message, enable_cache=False))


def as_character(honzik: str, novakova: str) -> str:
    """A text the character says: Honzík's (ty, masculine) or paní Nováková's (Vy, feminine)."""

    def voiced() -> str:
        return str(novakova if _character.get() is Character.NOVAKOVA else honzik)

    return cast(str, LazyProxy(voiced, enable_cache=False))
