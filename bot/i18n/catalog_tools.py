"""Keeping the catalogs in step with the source: extract the template, merge it, check it.

What `pybabel extract/update` would do, with the keywords and options in one place, plus the
check that CI runs (tests/test_i18n.py): a Czech text without a translation fails the build.
"""

from __future__ import annotations

import io
import string
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from bot.i18n import DOMAIN, LOCALES, REQUIRED, compile_po

SOURCES = LOCALES.parent
ROOT = SOURCES.parent
TEMPLATE = LOCALES / f"{DOMAIN}.pot"
KEYWORDS = {"__": None, "czech": None, "ngettext": (1, 2)}
COMMENT_TAGS = ("TRANSLATORS:",)
WIDTH = 100


def _catalog(locale: str | None = None) -> Catalog:
    return Catalog(
        locale=locale,
        domain=DOMAIN,
        project="Mluv.Me",
        version="1.0",
        copyright_holder="Mluv.Me",
        charset="utf-8",
        fuzzy=False,
    )


def extracted() -> Catalog:
    """The template as the source says it is now: every marked Czech text."""
    template = _catalog()
    for filename, lineno, message, comments, context in extract_from_dir(
        SOURCES,
        keywords=KEYWORDS,
        comment_tags=COMMENT_TAGS,
        strip_comment_tags=True,
    ):
        path = (SOURCES / filename).relative_to(ROOT).as_posix()
        template.add(message, None, [(path, lineno)], auto_comments=comments, context=context)
    return template


def _read(path: Path) -> Catalog:
    with path.open("rb") as po:
        return read_po(po)


def _write(path: Path, catalog: Catalog) -> None:
    """Without line numbers, so a change in the source moves no entry of another's catalog."""
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=WIDTH, include_lineno=False, ignore_obsolete=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())


def catalog_path(locale: str) -> Path:
    return LOCALES / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def extract() -> None:
    _write(TEMPLATE, extracted())


def update(locales: list[str]) -> None:
    """Merge the template into each catalog (new texts empty, changed ones fuzzy); a missing
    catalog is created."""
    template = _read(TEMPLATE)
    for locale in locales:
        path = catalog_path(locale)
        catalog = _read(path) if path.exists() else _catalog(locale)
        catalog.update(template)
        _write(path, catalog)


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _forms(text: object) -> list[str]:
    """A text's forms: one, or a plural's several."""
    return [str(form) for form in text] if isinstance(text, tuple | list) else [str(text or "")]


def _translated(message: Message) -> bool:
    return not message.fuzzy and all(_forms(message.string))


def _placeholders_kept(message: Message) -> bool:
    """A translation that drops or renames `{name}` would fail in `.format` at run time."""
    wanted = set().union(*(_fields(form) for form in _forms(message.id)))
    return all(_fields(form) <= wanted for form in _forms(message.string))


def problems() -> Iterator[str]:
    """What is wrong with the catalogs, one line each; nothing when all is well."""
    template = _read(TEMPLATE) if TEMPLATE.exists() else _catalog()
    source_ids = {message.id for message in extracted() if message.id}
    template_ids = {message.id for message in template if message.id}
    if source_ids != template_ids:
        yield f"{TEMPLATE.relative_to(ROOT)} is stale: run `python -m bot.i18n extract`"
    for locale in REQUIRED:
        path = catalog_path(locale)
        if not path.exists():
            yield f"{locale}: no catalog at {path.relative_to(ROOT)}"
            continue
        compile_po(path)
        catalog = _read(path)
        for msgid in sorted(source_ids, key=str):
            message = catalog.get(msgid)
            label = msgid[0] if isinstance(msgid, tuple) else msgid
            if message is None or not _translated(message):
                yield f"{locale}: not translated: {label!r}"
            elif not _placeholders_kept(message):
                yield f"{locale}: placeholders changed: {label!r}"
