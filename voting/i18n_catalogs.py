"""`voting i18n extract|update|compile`: the gettext catalogs kept in step with the code.

- extract: every string the Python code (gettext, ngettext, N_) and the templates
  (`_()`, `ngettext()`) use, into voting/locale/messages.pot, as babel.cfg maps them;
- update: merge the template into each language's messages.po (new strings come in empty,
  to be translated; strings gone from the code are kept as obsolete `#~` entries);
- compile: messages.po -> messages.mo, which are committed so an install needs no step.

`missing_translations` is what tests/test_i18n_catalogs.py checks: a string the code uses
that a catalog lacks, leaves empty, marks fuzzy, or translates with other placeholders.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po, write_po

from .i18n import DEFAULT_LANGUAGE, LANGUAGES, LOCALE_DIR

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "messages"
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "N_": None,
    # voting/web/charts.py: the label of a chart's summed series, singular and plural.
    "others_of": (1, 2),
}
TRANSLATED = tuple(lang for lang in LANGUAGES if lang != DEFAULT_LANGUAGE)
# str.format fields ({when}, {code!r}) and %-style ones (%(email)s, %(num)d).
_PLACEHOLDER = re.compile(r"\{[a-zA-Z_][a-zA-Z0-9_]*(?:![rs])?\}|%\([a-zA-Z_][a-zA-Z0-9_]*\)[sd]")


def extract(root: Path = PACKAGE_ROOT) -> Catalog:
    """A fresh template catalog from the sources under `root`, as babel.cfg maps them."""
    with open(root / "babel.cfg", encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    catalog = Catalog(
        project="WSIS Prizes voting engine",
        msgid_bugs_address="",
        copyright_holder="",
        charset="utf-8",
        creation_date=datetime(2026, 1, 1, tzinfo=UTC),
    )
    for filename, lineno, message, comments, context in extract_from_dir(
        str(root), method_map, options_map, keywords=KEYWORDS, strip_comment_tags=True
    ):
        if not message or (isinstance(message, tuple) and not message[0]):
            continue
        catalog.add(
            message,
            None,
            [(filename, lineno)],
            auto_comments=comments,
            context=context,
        )
    return catalog


def _placeholders(text: str) -> list[str]:
    return sorted(_PLACEHOLDER.findall(text))


def problems(template: Catalog, catalog: Catalog) -> Iterator[str]:
    """What `catalog` lacks for the strings `template` holds, one line each."""
    for message in template:
        if not message.id:
            continue
        found = catalog.get(message.id, context=message.context)
        key = message.id if isinstance(message.id, str) else message.id[0]
        if found is None:
            yield f"missing: {key!r}"
            continue
        if found.fuzzy:
            yield f"fuzzy: {key!r}"
        texts = found.string if isinstance(found.string, tuple) else (found.string,)
        if not texts or any(not t for t in texts):
            yield f"untranslated: {key!r}"
            continue
        sources = message.id if isinstance(message.id, tuple) else (message.id,)
        # Every placeholder of the source must survive in each translation: a plural's
        # forms may drop the count (Arabic's "one"), never a named field.
        wanted = set(_placeholders(sources[-1])) | set(_placeholders(sources[0]))
        for text in texts:
            have = set(_placeholders(text))
            if have - wanted:
                yield f"unknown placeholder {sorted(have - wanted)} in {key!r}"
            lost = {p for p in wanted - have if "num" not in p}
            if lost:
                yield f"lost placeholder {sorted(lost)} in {key!r}"


def po_path(lang: str, locale_dir: Path = LOCALE_DIR) -> Path:
    return locale_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def load_po(lang: str, locale_dir: Path = LOCALE_DIR) -> Catalog:
    with open(po_path(lang, locale_dir), "rb") as handle:
        return read_po(handle, locale=lang)


def missing_translations(root: Path = PACKAGE_ROOT) -> dict[str, list[str]]:
    template = extract(root)
    return {lang: list(problems(template, load_po(lang))) for lang in TRANSLATED}


def write_template(catalog: Catalog, locale_dir: Path = LOCALE_DIR) -> Path:
    path = locale_dir / f"{DOMAIN}.pot"
    with open(path, "wb") as handle:
        write_po(handle, catalog, width=100, sort_output=False, include_lineno=False)
    return path


def update(template: Catalog, locale_dir: Path = LOCALE_DIR) -> dict[str, int]:
    """Merge the template into each .po; returns how many strings each still lacks."""
    lacking = {}
    for lang in TRANSLATED:
        path = po_path(lang, locale_dir)
        if path.exists():
            catalog = load_po(lang, locale_dir)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(locale=lang, project=template.project, charset="utf-8")
        # No fuzzy guesses: a near match is often wrong, and an empty entry is visible.
        catalog.update(template, no_fuzzy_matching=True, update_header_comment=False)
        with open(path, "wb") as handle:
            write_po(handle, catalog, width=100, include_lineno=False)
        lacking[lang] = sum(1 for _ in problems(template, catalog))
    return lacking


def compile_all(locale_dir: Path = LOCALE_DIR) -> dict[str, int]:
    """messages.po -> messages.mo for each language; returns the strings compiled."""
    done = {}
    for lang in TRANSLATED:
        catalog = load_po(lang, locale_dir)
        with open(po_path(lang, locale_dir).with_suffix(".mo"), "wb") as handle:
            write_mo(handle, catalog, use_fuzzy=False)
        done[lang] = sum(1 for m in catalog if m.id and m.string)
    return done


def compiled_matches_source(lang: str, locale_dir: Path = LOCALE_DIR) -> bool:
    """Whether the committed .mo says what its .po says (someone forgot to compile)."""
    source = load_po(lang, locale_dir)
    buffer = io.BytesIO()
    write_mo(buffer, source, use_fuzzy=False)
    buffer.seek(0)
    fresh = read_mo(buffer)
    with open(po_path(lang, locale_dir).with_suffix(".mo"), "rb") as handle:
        committed = read_mo(handle)
    return _pairs(fresh) == _pairs(committed)


def _pairs(catalog: Catalog) -> set[tuple[object, object]]:
    def frozen(value: object) -> object:
        return tuple(value) if isinstance(value, list | tuple) else value

    return {(frozen(m.id), frozen(m.string)) for m in catalog if m.id}


__all__ = [
    "Message",
    "compile_all",
    "extract",
    "missing_translations",
    "problems",
    "update",
    "write_template",
]


# -- the command ------------------------------------------------------------------------


def add_parser(sub: object) -> None:
    parser = sub.add_parser(  # type: ignore[attr-defined]
        "i18n", help="extract, update and compile the interface translations (gettext)"
    )
    action = parser.add_subparsers(dest="i18n_cmd", required=True)
    action.add_parser("extract", help="write voting/locale/messages.pot from the code")
    action.add_parser("update", help="extract, then merge into each language's messages.po")
    action.add_parser("compile", help="compile each messages.po into messages.mo")
    action.add_parser("check", help="list the strings a catalog lacks; exit 1 if any")


def run(args: object) -> int:
    what = getattr(args, "i18n_cmd", "")
    if what in {"extract", "update"}:
        template = extract()
        path = write_template(template)
        print(f"{len(template)} strings -> {path}")
        if what == "update":
            for lang, lacking in update(template).items():
                print(f"{lang}: {lacking} to translate")
        return 0
    if what == "compile":
        for lang, count in compile_all().items():
            print(f"{lang}: {count} strings compiled")
        return 0
    missing = missing_translations()
    for lang, found in missing.items():
        for line in found:
            print(f"{lang}: {line}")
    return 1 if any(missing.values()) else 0
