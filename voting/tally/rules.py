"""The result rules of an edition: shortlist, expert criteria, merge rule, tie policy.

They sit among the edition's other rules (`[rules]` in the edition file; the defaults are
`ResultRules`' own: the five WSIS criteria with equal weights on a 1 to 10 scale, the
WSIS merge rule and joint winners) and are locked with them when voting opens, so the
rule that picks the winners is on record before anyone has seen a vote.
`ResultRules.parse` validates them when an edition is read (voting/contest/rules.py
gathers every area's rules); the weights are kept exact, as written, for the tally.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

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


def exact(value: float | int) -> Fraction:
    """The number as written in the edition file (0.1 is one tenth, not its binary double)."""
    return Fraction(str(value))


@dataclass(frozen=True)
class Criterion:
    code: str
    name: str
    weight: Fraction


# How winners are chosen by default (voting/tally/merge.py documents each rule): experts
# score the shortlist on the five WSIS criteria, weighted equally.
DEFAULT_CRITERIA = (
    Criterion("impact", "Impact", Fraction(1)),
    Criterion("sustainability", "Sustainability", Fraction(1)),
    Criterion("replicability", "Replicability", Fraction(1)),
    Criterion("innovation", "Innovation", Fraction(1)),
    Criterion("relevance", "Relevance to the action line", Fraction(1)),
)


@dataclass(frozen=True)
class ResultRules:
    """The result rules in force, with exact weights.

    The field names are the tally's; `to_dict` gives the stored names (`[rules]` keys).
    """

    # 2013 and 2015 discarded a voter's ballot unless every category was voted; off by
    # default because later editions dropped it. The ballot script and the official
    # tally both apply it.
    completeness_rule: bool = False
    shortlist_size: int = 5
    shortlist_ties: str = "all_tied_enter"
    merge_rule: str = "experts_pick"
    public_weight: Fraction = Fraction(1, 2)
    expert_weight: Fraction = Fraction(1, 2)
    blend_basis: str = "score"
    normalization: str = "none"
    tie_policy: str = "joint_winners"
    score_min: int = 1
    score_max: int = 10
    criteria: tuple[Criterion, ...] = DEFAULT_CRITERIA
    signoffs_required: int = 2
    # What a shortlisted category no expert scored at all gets (voting/tally/merge.py,
    # 3.): ranked by public votes alone (and marked so in the results), or "block": no
    # result until an expert scores it.
    no_expert_scores: str = "public_votes_only"

    @classmethod
    def parse(cls, table: Mapping[str, Any], err: ErrorFactory) -> ResultRules:
        """The result rules from an edition's `[rules]` keys (those in `to_dict`), already
        merged on the defaults and checked for type by the caller; the choices, weights,
        scale and criteria are checked here."""
        for key, allowed in _CHOICES.items():
            if table[key] not in allowed:
                raise err(f"rules.{key}", f"{table[key]!r} is not one of {', '.join(allowed)}")
        for key in ("blend_public_weight", "blend_expert_weight"):
            value = table[key]
            if not _number(value) or value < 0:
                raise err(f"rules.{key}", f"must be a number at least 0, got {value!r}")
        # Weights go through float, as the stored rules always held them, so that a rule
        # read back from the database is the one that was parsed from the file.
        public, expert = float(table["blend_public_weight"]), float(table["blend_expert_weight"])
        if public + expert == 0:
            raise err("rules.blend_expert_weight", "the two blend weights cannot both be 0")
        if table["score_max"] <= table["score_min"]:
            raise err(
                "rules.score_max",
                f"{table['score_max']} must be above rules.score_min {table['score_min']}",
            )
        return cls(
            completeness_rule=table["completeness_rule"],
            shortlist_size=table["shortlist_size"],
            shortlist_ties=table["shortlist_ties"],
            merge_rule=table["merge_rule"],
            public_weight=exact(public),
            expert_weight=exact(expert),
            blend_basis=table["blend_basis"],
            normalization=table["expert_normalization"],
            tie_policy=table["tie_policy"],
            score_min=table["score_min"],
            score_max=table["score_max"],
            criteria=_parse_criteria(table["criteria"], err),
            signoffs_required=table["signoffs_required"],
            no_expert_scores=table["no_expert_scores"],
        )

    @property
    def uses_experts(self) -> bool:
        return self.merge_rule == "experts_pick" or self.expert_weight > 0

    def to_dict(self) -> dict[str, Any]:
        """The rules by their `[rules]` names: what the edition stores, and the snapshot
        written into a publication and shown with the results."""
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


def _parse_criteria(raw: object, err: ErrorFactory) -> tuple[Criterion, ...]:
    if not isinstance(raw, list) or not raw:
        raise err("rules.criteria", "must be a non-empty array of {code, name, weight} tables")
    criteria: list[Criterion] = []
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
        criteria.append(Criterion(code, name.strip(), exact(float(weight))))
    return tuple(criteria)
