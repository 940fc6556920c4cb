"""The result rules of an edition: shortlist, expert criteria, merge rule, tie policy.

They sit among the edition's other rules (`[rules]` in the edition file, defaults in
`RESULT_DEFAULTS` below, which `voting.contest.DEFAULT_RULES` spreads in: the five WSIS
criteria with equal weights on a 1 to 10 scale, the WSIS merge rule and joint winners)
and are locked with them when voting opens, so the rule that picks the winners is on
record before anyone has seen a vote. `parse_result_rules` validates them when an edition
file is read; `ResultRules.of` turns the stored rules into exact numbers for the tally.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

# The result rules' defaults, part of every edition's `[rules]` (voting.contest.DEFAULT_RULES
# spreads them in). How winners are chosen (voting/tally/merge.py documents each rule):
# experts score the shortlist on weighted criteria, and the merge rule turns votes and
# scores into a ranking.
RESULT_DEFAULTS: dict[str, Any] = {
    "merge_rule": "experts_pick",  # or "blend"
    "blend_public_weight": 0.5,
    "blend_expert_weight": 0.5,
    "blend_basis": "score",  # or "rank"
    "expert_normalization": "none",  # or "zscore"
    "tie_policy": "joint_winners",  # or "break_chain"
    # A shortlisted category no expert scored at all: ranked by public votes alone (and
    # marked so in the results), or "block": no result until an expert scores it.
    "no_expert_scores": "public_votes_only",
    "score_min": 1,
    "score_max": 10,
    "criteria": [
        {"code": "impact", "name": "Impact", "weight": 1.0},
        {"code": "sustainability", "name": "Sustainability", "weight": 1.0},
        {"code": "replicability", "name": "Replicability", "weight": 1.0},
        {"code": "innovation", "name": "Innovation", "weight": 1.0},
        {"code": "relevance", "name": "Relevance to the action line", "weight": 1.0},
    ],
}

MERGE_RULES = ("experts_pick", "blend")
BLEND_BASES = ("score", "rank")
NORMALIZATIONS = ("none", "zscore")
TIE_POLICIES = ("joint_winners", "break_chain")
SHORTLIST_TIES = ("all_tied_enter", "break_chain")
NO_EXPERT_SCORES = ("public_votes_only", "block")

_CHOICES = {
    "merge_rule": MERGE_RULES,
    "blend_basis": BLEND_BASES,
    "expert_normalization": NORMALIZATIONS,
    "tie_policy": TIE_POLICIES,
    "shortlist_ties": SHORTLIST_TIES,
    "no_expert_scores": NO_EXPERT_SCORES,
}
_CRITERION_CODE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_CRITERION_KEYS = ("code", "name", "weight")

# (field path, problem) -> the caller's error type, so messages name the file.
ErrorFactory = Callable[[str | None, str], Exception]


def _number(value: object) -> bool:
    # bool is an int to Python; "weight = true" is a mistake, not 1.
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_result_rules(rules: dict[str, Any], err: ErrorFactory) -> dict[str, Any]:
    """Check the result rules in an edition's merged rules; return them normalized.

    Weights become floats and the criteria a fresh list, so no edition shares (or
    mutates) the defaults.
    """
    for key, allowed in _CHOICES.items():
        if rules[key] not in allowed:
            raise err(f"rules.{key}", f"{rules[key]!r} is not one of {', '.join(allowed)}")
    for key in ("blend_public_weight", "blend_expert_weight"):
        value = rules[key]
        if not _number(value) or value < 0:
            raise err(f"rules.{key}", f"must be a number at least 0, got {value!r}")
        rules[key] = float(value)
    if rules["blend_public_weight"] + rules["blend_expert_weight"] == 0:
        raise err("rules.blend_expert_weight", "the two blend weights cannot both be 0")
    if rules["score_max"] <= rules["score_min"]:
        raise err(
            "rules.score_max",
            f"{rules['score_max']} must be above rules.score_min {rules['score_min']}",
        )
    rules["criteria"] = _parse_criteria(rules["criteria"], err)
    return rules


def _parse_criteria(raw: object, err: ErrorFactory) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise err("rules.criteria", "must be a non-empty array of {code, name, weight} tables")
    criteria: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw):
        where = f"rules.criteria[{index}]"
        if not isinstance(entry, Mapping):
            raise err(where, f"must be a table with {', '.join(_CRITERION_KEYS)}")
        unknown = sorted(set(entry) - set(_CRITERION_KEYS))
        if unknown:
            raise err(
                f"{where}.{unknown[0]}", f"unknown key; allowed: {', '.join(_CRITERION_KEYS)}"
            )
        code, name, weight = entry.get("code"), entry.get("name"), entry.get("weight", 1.0)
        if not isinstance(code, str) or not _CRITERION_CODE.match(code):
            raise err(f"{where}.code", f"{code!r} must be a short lower-case code like 'impact'")
        if code in seen:
            raise err(f"{where}.code", f"duplicate criterion {code!r}")
        seen.add(code)
        if not isinstance(name, str) or not name.strip():
            raise err(f"{where}.name", "must be a non-empty string")
        if not _number(weight) or weight <= 0:
            raise err(f"{where}.weight", f"must be a number above 0, got {weight!r}")
        criteria.append({"code": code, "name": name.strip(), "weight": float(weight)})
    return criteria


def exact(value: float | int) -> Fraction:
    """The number as written in the edition file (0.1 is one tenth, not its binary double)."""
    return Fraction(str(value))


@dataclass(frozen=True)
class Criterion:
    code: str
    name: str
    weight: Fraction


@dataclass(frozen=True)
class ResultRules:
    """The result rules in force, with exact weights."""

    shortlist_size: int
    shortlist_ties: str
    merge_rule: str
    public_weight: Fraction
    expert_weight: Fraction
    blend_basis: str
    normalization: str
    tie_policy: str
    score_min: int
    score_max: int
    criteria: tuple[Criterion, ...]
    signoffs_required: int = 2
    completeness_rule: bool = False
    # What a category without a single expert score gets (voting/tally/merge.py, 3.).
    no_expert_scores: str = "block"

    @classmethod
    def of(cls, rules: Mapping[str, Any]) -> ResultRules:
        """From an edition's stored rules; keys an older edition lacks take the defaults."""
        merged = {**RESULT_DEFAULTS, **rules}
        return cls(
            shortlist_size=int(merged.get("shortlist_size", 5)),
            shortlist_ties=str(merged.get("shortlist_ties", "all_tied_enter")),
            merge_rule=merged["merge_rule"],
            public_weight=exact(merged["blend_public_weight"]),
            expert_weight=exact(merged["blend_expert_weight"]),
            blend_basis=merged["blend_basis"],
            normalization=merged["expert_normalization"],
            tie_policy=merged["tie_policy"],
            score_min=int(merged["score_min"]),
            score_max=int(merged["score_max"]),
            criteria=tuple(
                Criterion(c["code"], c["name"], exact(c.get("weight", 1)))
                for c in merged["criteria"]
            ),
            signoffs_required=int(merged.get("signoffs_required", 2)),
            completeness_rule=bool(merged.get("completeness_rule", False)),
            # An edition stored before this rule existed was locked with the old
            # behaviour (block), so the default applies only to editions loaded since.
            no_expert_scores=str(rules.get("no_expert_scores", "block")),
        )

    @property
    def uses_experts(self) -> bool:
        return self.merge_rule == "experts_pick" or self.expert_weight > 0

    def to_dict(self) -> dict[str, Any]:
        """The snapshot written into a publication and shown with the results."""
        return {
            "completeness_rule": self.completeness_rule,
            "shortlist_size": self.shortlist_size,
            "shortlist_ties": self.shortlist_ties,
            "merge_rule": self.merge_rule,
            "blend_public_weight": float(self.public_weight),
            "blend_expert_weight": float(self.expert_weight),
            "blend_basis": self.blend_basis,
            "expert_normalization": self.normalization,
            "tie_policy": self.tie_policy,
            "score_min": self.score_min,
            "score_max": self.score_max,
            "criteria": [
                {"code": c.code, "name": c.name, "weight": float(c.weight)} for c in self.criteria
            ],
            "signoffs_required": self.signoffs_required,
            "no_expert_scores": self.no_expert_scores,
        }
