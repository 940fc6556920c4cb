"""The audit log in plain words: what each recorded action means, and who did it.

The log stores codes (`expert_review.extend`, `fraud.void_flag`) and actors as the code
wrote them (`user:ana@example.org`, `cli:ana`, `system:detector`). Staff read them on
`/staff/record` and in the committee's report; this module says them in the reader's
language. An action without words here is shown as its code, so nothing is hidden.
"""

from __future__ import annotations

from .i18n import N_, gettext

ACTIONS: dict[str, str] = {
    "edition.load": N_("Edition loaded or replaced"),
    "nomination.create": N_("Nomination drafted"),
    "nomination.submit": N_("Nomination submitted"),
    "nomination.resubmit": N_("Nomination submitted again after changes"),
    "nomination.accept": N_("Nomination accepted"),
    "nomination.reject": N_("Nomination rejected"),
    "nomination.return": N_("Nomination sent back for changes"),
    "nomination.seed": N_("Demonstration nominations created"),
    "nomination.withdraw": N_("Nomination withdrawn by its nominator"),
    "mobilisation.declare": N_("Campaign declared"),
    "mobilisation.approve": N_("Declared campaign approved"),
    "mobilisation.reject": N_("Declared campaign rejected"),
    "voting.extend": N_("Voting deadline extended"),
    "fraud.quarantine": N_("Votes held by a fraud detector"),
    "fraud.release": N_("Held vote released: it counts"),
    "fraud.void": N_("Vote voided: it does not count"),
    "fraud.release_flag": N_("Every vote of a fraud flag released"),
    "fraud.void_flag": N_("Every vote of a fraud flag voided"),
    "fraud.review_asked": N_("Review of held votes asked for"),
    "fraud.review_answered": N_("Review request answered"),
    "expert.assign": N_("Expert assigned to categories"),
    "expert.unassign": N_("Expert taken off categories"),
    "expert.replace": N_("Expert replaced"),
    "expert.score": N_("Expert scores saved"),
    "expert.conflict": N_("Conflict of interest declared"),
    "expert_review.extend": N_("Expert review extended"),
    "results.signoff": N_("Results signed off"),
    "results.publish": N_("Results published"),
    "user.grant": N_("Staff role given"),
    "user.revoke": N_("Staff role taken away"),
    "privacy.purge": N_("Personal data past its retention erased"),
    "rehearsal.create": N_("Rehearsal created"),
    "rehearsal.drop": N_("Rehearsal removed"),
    "rehearsal.mint": N_("Rehearsal voter tokens signed"),
}

# The record's filters: a kind is a set of action prefixes.
KINDS: dict[str, tuple[str, ...]] = {
    "nominations": ("nomination.", "mobilisation."),
    "voting": ("voting.", "edition."),
    "fraud": ("fraud.",),
    "experts": ("expert.", "expert_review."),
    "results": ("results.",),
    "accounts": ("user.",),
}
KIND_NAMES: dict[str, str] = {
    "nominations": N_("Nominations and campaigns"),
    "voting": N_("Edition and voting deadline"),
    "fraud": N_("Fraud decisions"),
    "experts": N_("Expert review"),
    "results": N_("Sign-off and publication"),
    "accounts": N_("Staff accounts"),
}


def action_words(action: str, lang: str) -> str:
    template = ACTIONS.get(action)
    return gettext(template, lang) if template else action


def actor_words(actor: str, lang: str) -> str:
    """`user:ana@example.org` is Ana's address; `cli:ana` the command line run by ana."""
    kind, _, who = actor.partition(":")
    if kind == "user" and who:
        return who
    if kind == "cli" and who:
        return gettext("{who} (command line)", lang).format(who=who)
    if actor == "cli":
        return gettext("the command line", lang)
    if kind == "system" or actor.startswith(("detector", "system")):
        return gettext("the engine ({what})", lang).format(what=who or actor)
    return actor
