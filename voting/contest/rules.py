"""An edition's rules, typed: one frozen dataclass per area, each with its defaults.

`[rules]` in the edition file is one flat table (plus `[rules.antifraud]` and
`[rules.privacy]`), and `editions.rules` stores it in the same shape, because the
database reads some of it (the official tally's `completeness_rule`, the purge's privacy
rules). The code reads it typed: `EditionRules.parse` checks the table once, when the
edition is read from its file or from the database, and every module reads attributes:
`edition.rules.nominations.summary_words_min`, `edition.rules.fraud.ip_limit`.

The areas and where their defaults live:

- `NominationRules` (here): what a nomination may be.
- `VotingRules` (here): what the voting phase shows.
- `voting.antifraud.config.FraudRules`: inline limits, challenges and detector thresholds.
- `voting.tally.rules.ResultRules`: the shortlist, experts' criteria, merge, sign-offs,
  and which ballots count (`completeness_rule`).
- `voting.privacy_rules.PrivacyRules`: how long personal data stays.

A change for a rehearsal or a simulation is `dataclasses.replace` on the area, never a
change to a dictionary.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..antifraud.config import FraudRules
from ..privacy_rules import PrivacyRules
from ..tally.rules import ResultRules

__all__ = [
    "EditionRules",
    "NominationRules",
    "RulesError",
    "VotingRules",
]

# (field path, problem) -> the caller's error, so that messages name the file.
ErrorFactory = Callable[[str | None, str], Exception]


class RulesError(ValueError):
    """Stored rules (editions.rules) that no longer parse: the database was written by
    other code, or by hand."""


@dataclass(frozen=True)
class NominationRules:
    nominations_per_organization_per_category: int = 1
    summary_words_min: int = 150
    summary_words_max: int = 200


@dataclass(frozen=True)
class VotingRules:
    # Live counts invite the mobilisation campaigns observers complained about, and they
    # are not the final count of eligible votes anyway.
    show_live_counts: bool = False


@dataclass(frozen=True)
class EditionRules:
    nominations: NominationRules = field(default_factory=NominationRules)
    voting: VotingRules = field(default_factory=VotingRules)
    fraud: FraudRules = field(default_factory=FraudRules)
    results: ResultRules = field(default_factory=ResultRules)
    privacy: PrivacyRules = field(default_factory=PrivacyRules)

    @classmethod
    def parse(cls, raw: object, err: ErrorFactory) -> EditionRules:
        """The `[rules]` table of an edition file (None: every default), checked."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise err("rules", f"must be a table, got {type(raw).__name__}")
        defaults = _FLAT_DEFAULTS
        _unknown_keys(raw, tuple(defaults), err)
        flat = dict(defaults)
        for key, value in raw.items():
            expected = type(defaults[key])
            # bool is a subclass of int: "shortlist_size = true" must not pass as 1. A
            # whole number where a fraction is expected ("blend_public_weight = 1") is fine.
            if type(value) is not expected and not (expected is float and type(value) is int):
                raise err(
                    f"rules.{key}",
                    f"must be {expected.__name__} (like {defaults[key]!r}), "
                    f"got {type(value).__name__} {value!r}",
                )
            if key in _MINIMUMS and value < _MINIMUMS[key]:
                raise err(f"rules.{key}", f"must be at least {_MINIMUMS[key]}, got {value}")
            if isinstance(value, str) and not value.strip():
                raise err(f"rules.{key}", "must not be empty")
            flat[key] = value
        fraud = FraudRules.parse(flat["antifraud"], err)
        privacy = PrivacyRules.parse(flat["privacy"], err)
        results = ResultRules.parse(flat, err)
        if flat["summary_words_max"] < flat["summary_words_min"]:
            raise err(
                "rules.summary_words_max",
                f"{flat['summary_words_max']} is below "
                f"rules.summary_words_min {flat['summary_words_min']}",
            )
        return cls(
            nominations=NominationRules(
                nominations_per_organization_per_category=flat[
                    "nominations_per_organization_per_category"
                ],
                summary_words_min=flat["summary_words_min"],
                summary_words_max=flat["summary_words_max"],
            ),
            voting=VotingRules(show_live_counts=flat["show_live_counts"]),
            fraud=fraud,
            results=results,
            privacy=privacy,
        )

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> EditionRules:
        """The rules as `editions.rules` holds them (`to_json`'s shape).

        An edition stored before `no_expert_scores` existed was locked with the old
        behaviour (block), so the file's default applies only to editions loaded since.
        """
        return cls.parse({"no_expert_scores": "block", **stored}, _stored_error)

    def to_json(self) -> dict[str, Any]:
        """The flat table `editions.rules` stores and the API shows: every rule but the
        anti-fraud and privacy ones, of which only the edition's overrides (so that an
        edition that changes nothing has `antifraud = {}`)."""
        results = self.results.to_dict()
        nominations = self.nominations
        return {
            "completeness_rule": results["completeness_rule"],
            "nominations_per_organization_per_category": (
                nominations.nominations_per_organization_per_category
            ),
            "summary_words_min": nominations.summary_words_min,
            "summary_words_max": nominations.summary_words_max,
            "shortlist_size": results["shortlist_size"],
            "shortlist_ties": results["shortlist_ties"],
            "show_live_counts": self.voting.show_live_counts,
            "signoffs_required": results["signoffs_required"],
            "antifraud": self.fraud.overrides(),
            "privacy": self.privacy.overrides(),
            **{key: results[key] for key in _RESULT_KEYS},
        }


# The result rules' own keys, in the order error messages have always listed them.
_RESULT_KEYS = (
    "merge_rule",
    "blend_public_weight",
    "blend_expert_weight",
    "blend_basis",
    "expert_normalization",
    "tie_policy",
    "no_expert_scores",
    "score_min",
    "score_max",
    "criteria",
)


def _stored_error(field_path: str | None, problem: str) -> RulesError:
    return RulesError(f"editions.rules: {field_path}: {problem}")


def _unknown_keys(table: Mapping[str, Any], allowed: tuple[str, ...], err: ErrorFactory) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise err(f"rules.{key}", f"unknown key; {hint}allowed keys are {', '.join(allowed)}")


# Every key of `[rules]` with its default, in the order error messages list them.
_FLAT_DEFAULTS: dict[str, Any] = EditionRules().to_json()

# Lower bounds for the integer rules; zero would make the contest meaningless (no
# nominations, an empty shortlist, results published without anyone signing off).
_MINIMUMS = {
    "nominations_per_organization_per_category": 1,
    "summary_words_min": 0,
    "summary_words_max": 1,
    "shortlist_size": 1,
    "signoffs_required": 1,
}
