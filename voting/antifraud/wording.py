"""The fraud detectors in plain words, for the committee's fraud page.

Each detector (voting/antifraud/detectors.py) is named by a code in its flags; the
committee reads what it saw instead. A code without words here is shown as itself.
"""

from __future__ import annotations

from ..i18n import N_, gettext

DETECTOR_WORDS: dict[str, str] = {
    "cluster": N_("Votes sent at a machine's regular rhythm from one browser"),
    "concentration": N_("Far more of this nomination's votes from one network than usual"),
    "burst": N_("A sudden burst of votes for this nomination from a few networks"),
    "bulk_verification": N_(
        "Voter addresses confirmed in bulk from one network, then voting together"
    ),
    "drip": N_("A steady drip of voters who vote in this category only"),
    "catchall": N_("An email domain minting mailboxes that vote from everywhere"),
    "form_timing": N_("Ballots sent back faster than people read them"),
    "same_voter": N_(
        "Other votes of voters held for this nomination: the same people voting elsewhere"
    ),
}


def detector_words(code: str, lang: str) -> str:
    template = DETECTOR_WORDS.get(code)
    return gettext(template, lang) if template else code
