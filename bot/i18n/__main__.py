"""`python -m bot.i18n extract|update [LOCALE...]|check`: keep the catalogs in step.

extract: write bot/locales/messages.pot from the marked Czech texts.
update:  merge the template into bot/locales/*/LC_MESSAGES/messages.po (or the LOCALEs named).
check:   the template is current and en, uk and ru translate every text; exit 1 otherwise.
The catalogs are compiled when the bot starts, so there is no compile step.
"""

from __future__ import annotations

import argparse
import sys

from bot.i18n import LOCALES
from bot.i18n.catalog_tools import extract, problems, update


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.i18n", description=__doc__)
    parser.add_argument("command", choices=("extract", "update", "check"))
    parser.add_argument("locales", nargs="*")
    args = parser.parse_args(argv)
    if args.command == "extract":
        extract()
    elif args.command == "update":
        found = sorted(po.parent.parent.name for po in LOCALES.glob("*/LC_MESSAGES/*.po"))
        update(args.locales or found)
    else:
        found_problems = list(problems())
        for problem in found_problems:
            print(problem)
        return 1 if found_problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
