"""The rule in force, in plain words, for the results pages, the report and the terminal."""

from __future__ import annotations

from typing import Any

from ..i18n import gettext


def describe_rules(rules: dict[str, Any], lang: str = "en") -> list[str]:
    """Sentences that say how winners were chosen, from a rules snapshot (`to_dict`).

    It reads the snapshot, not the edition's typed rules, because a publication's
    snapshot is a record: one written before a rule existed (`no_expert_scores`) is worded
    as it was published, not with today's default for the missing rule."""

    def _(text: str) -> str:
        return gettext(text, lang)

    said = []
    if rules.get("completeness_rule"):
        said.append(_("Only votes from voters who voted in every category count."))
    said.append(
        _(
            "Counted votes are the ledger's votes that were not quarantined or voided;"
            " released votes count again."
        )
    )
    ties = (
        _("all nominations tied with the last place enter")
        if rules["shortlist_ties"] == "all_tied_enter"
        else _("a tie at the last place is broken by the public id")
    )
    said.append(
        _("The {size} most-voted nominations of each category form the shortlist; {ties}.").format(
            size=rules["shortlist_size"], ties=ties
        )
    )
    criteria = ", ".join(f"{c['name']} ({c['weight']:g})" for c in rules["criteria"])
    said.append(
        _(
            "Experts score each shortlisted nomination from {low} to {high} on: {criteria}"
            " (weights in brackets); an expert with a declared conflict of interest is recused."
        ).format(low=rules["score_min"], high=rules["score_max"], criteria=criteria)
    )
    if rules["expert_normalization"] == "zscore":
        said.append(
            _(
                "Each expert's scores are turned into z-scores among the nominations that"
                " expert scored, to cancel harsh and lenient judges."
            )
        )
    if rules["merge_rule"] == "experts_pick":
        said.append(_("The experts' mean weighted score picks the winner among the shortlist."))
    else:
        basis = (
            _("points from each side's ranking (first 1, last 0)")
            if rules["blend_basis"] == "rank"
            else _("each side's figures scaled from 0 (lowest) to 1 (highest)")
        )
        said.append(
            _(
                "Public votes and expert scores are blended: {public:g} × public + {expert:g} ×"
                " experts, using {basis}."
            ).format(
                public=rules["blend_public_weight"],
                expert=rules["blend_expert_weight"],
                basis=basis,
            )
        )
    if rules.get("no_expert_scores") == "public_votes_only":
        said.append(
            _(
                "A category that no expert scored is ranked by public votes alone, and is"
                " marked as such."
            )
        )
    elif rules.get("no_expert_scores") == "block":
        said.append(_("A category that no expert scored has no result until an expert scores it."))
    if rules["tie_policy"] == "joint_winners":
        said.append(_("Nominations tied for first place are joint winners."))
    else:
        said.append(
            _(
                "A tie is broken by official votes, then by the expert figure, then by the"
                " public id."
            )
        )
    said.append(
        _("Results are published after {n} committee members sign off.").format(
            n=rules["signoffs_required"]
        )
    )
    return said
