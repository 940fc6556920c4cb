"""Results: the official tally, the shortlist, expert scoring, the merge, publication.

Modules, from the ledger to the published result:

- `official`: the official tally from the PostgreSQL ledger (never Redis), one query.
- `rules`: the result rules of an edition (criteria, merge rule, tie policy, ...).
- `scoring`: which expert reviews count, weighted scores, z-score normalization.
- `ranking`: the public order, the shortlist, ranks and ties.
- `merge`: the merge rules, documented there, that turn votes and scores into a ranking.
- `results`: gathers the inputs of an edition from PostgreSQL and applies the rules.
- `experts`: assignments, conflicts of interest and scores, frozen after the review.
- `merkle`, `verify`: the ledger fingerprint, exports and inclusion proofs; `verify`
  is a stand-alone script anyone can run (`voting verify EXPORT`).
- `publication`: committee sign-offs and the publication record.
- `receipts`: what a receipt says about its vote.
- `exports`, `chart`, `wording`: CSV, terminal tables, the report's fraud summary, the
  SVG chart of votes over time, the rule in force in plain words.
- `errors`: refusals worded for people (translated); `commands`: the CLI commands;
  `benchmark`: timings over a large scratch ledger.
"""

from .official import official_tally

__all__ = ["official_tally"]
