-- Every vote in the ledger ends with a risk verdict. A suspect vote is never deleted:
-- it is quarantined, kept out of the official tally, until the prize committee releases
-- it (it counts again) or voids it (it never counts). The reasons are the rules that
-- flagged it; each decision is also written to the append-only audit_log.
ALTER TABLE votes
    ADD COLUMN verdict text NOT NULL DEFAULT 'counted'
        CHECK (verdict IN ('counted', 'quarantined', 'released', 'voided')),
    ADD COLUMN verdict_reasons text[] NOT NULL DEFAULT '{}',
    ADD COLUMN verdict_at timestamptz;

CREATE INDEX votes_verdict ON votes (edition_id, verdict) WHERE verdict <> 'counted';
