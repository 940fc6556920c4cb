"""The catalogs hold every string the code uses, translated, in all five other languages.

The template is extracted afresh from the sources (Python and every template, as
babel.cfg maps them), so a string added to a page without a translation fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog

from voting import i18n_catalogs
from voting.i18n import LANGUAGES
from voting.web.templating import TEMPLATE_DIR


@pytest.fixture(scope="module")
def template() -> Catalog:
    return i18n_catalogs.extract()


@pytest.mark.parametrize("lang", i18n_catalogs.TRANSLATED)
def test_every_string_the_code_uses_is_translated(template, lang):
    found = list(i18n_catalogs.problems(template, i18n_catalogs.load_po(lang)))
    assert not found, (
        f"{lang}: run `voting i18n update`, translate, then `voting i18n compile`:\n"
        + "\n".join(found[:40])
    )


@pytest.mark.parametrize("lang", i18n_catalogs.TRANSLATED)
def test_the_committed_mo_is_compiled_from_the_po(lang):
    assert i18n_catalogs.compiled_matches_source(lang), f"run `voting i18n compile` ({lang})"


def test_extraction_reads_every_template_and_the_python_code(template):
    sources = {path for message in template for path, _ in message.locations}
    templates = {
        str(p.relative_to(i18n_catalogs.PACKAGE_ROOT))
        for p in Path(TEMPLATE_DIR).rglob("*.html")
        if "_(" in p.read_text(encoding="utf-8")
    }
    assert templates and templates <= sources
    assert "voting/web/voting.py" in sources and "voting/nominations/fields.py" in sources


def test_the_check_catches_a_missing_an_empty_a_fuzzy_and_a_broken_string():
    template = Catalog()
    for msgid in ("Sign in", "Hello %(email)s", "Closes on {when}.", "Vote", "Home"):
        template.add(msgid)
    catalog = Catalog(locale="fr")
    catalog.add("Sign in", "Se connecter")
    catalog.add("Hello %(email)s", "Bonjour %(adresse)s")
    catalog.add("Closes on {when}.", "Ferme.")
    catalog.add("Vote", "")
    catalog.add("Home", "Accueil", flags=["fuzzy"])
    found = list(i18n_catalogs.problems(template, catalog))
    assert any("unknown placeholder ['%(adresse)s']" in f for f in found)
    assert any("lost placeholder ['{when}']" in f for f in found)
    assert "untranslated: 'Vote'" in found
    assert "fuzzy: 'Home'" in found
    catalog2 = Catalog(locale="fr")
    assert "missing: 'Sign in'" in list(i18n_catalogs.problems(template, catalog2))


def test_six_languages_and_arabic_right_to_left():
    from voting.i18n import RTL_LANGUAGES

    assert set(LANGUAGES) == {"en", "ar", "zh", "fr", "ru", "es"}
    assert RTL_LANGUAGES == {"ar"}
