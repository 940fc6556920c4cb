"""Nominations: intake, validation, the review workflow, and the public list.

- `fields`: every field's check, per field, never raising (pure, no I/O);
- `workflow`: drafts, submissions and the organizers' decisions in PostgreSQL, with the
  phase rules in the edition's zone, the audit log and the mail outbox;
- `queries`: what the pages and the API read, and `votable_nominations` for voting.
"""

from __future__ import annotations

from .fields import (
    FIELDS,
    STAKEHOLDER_TYPES,
    Fields,
    Problem,
    Validation,
    count_words,
    countries,
    country_name,
    language_name,
    normalize_key,
    validate,
)
from .queries import (
    PublicQuery,
    category_counts,
    for_owner,
    history,
    public_countries,
    public_list,
    queue,
    status_counts,
    votable_nominations,
)
from .workflow import (
    STATUSES,
    Decision,
    Nomination,
    NominationError,
    clean_idempotency_key,
    create,
    decide,
    geneva_wall,
    get,
    issue_public_ids,
    nominations_problem,
    normalize_public_id,
    review_problem,
    submit,
    update,
    validate_decision,
    withdraw,
    withdraw_problem,
)

__all__ = [
    "FIELDS",
    "STAKEHOLDER_TYPES",
    "STATUSES",
    "Decision",
    "Fields",
    "Nomination",
    "NominationError",
    "Problem",
    "PublicQuery",
    "Validation",
    "category_counts",
    "clean_idempotency_key",
    "count_words",
    "countries",
    "country_name",
    "create",
    "decide",
    "for_owner",
    "geneva_wall",
    "get",
    "history",
    "issue_public_ids",
    "language_name",
    "nominations_problem",
    "normalize_key",
    "normalize_public_id",
    "public_countries",
    "public_list",
    "queue",
    "review_problem",
    "status_counts",
    "submit",
    "update",
    "validate",
    "validate_decision",
    "votable_nominations",
    "withdraw",
    "withdraw_problem",
]
