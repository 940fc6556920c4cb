-- The fraud layer: the signals detectors read, their flags, and the review trail.

ALTER TABLE votes
    ADD COLUMN email_domain text,
    -- /24 for IPv4, /48 for IPv6: what the network rate limits and detectors group by.
    ADD COLUMN network text,
    ADD COLUMN form_nonce text;
CREATE INDEX votes_network ON votes (edition_id, network, cast_at);

ALTER TABLE voters ADD COLUMN network text;
CREATE INDEX voters_network ON voters (edition_id, network, verified_at);

-- One flag per detector finding: the votes it quarantined, its evidence, its fate.
CREATE TABLE fraud_flags (
    id              bigserial PRIMARY KEY,
    edition_id      integer NOT NULL REFERENCES editions (id) ON DELETE CASCADE,
    detector        text NOT NULL,
    -- The finding's identity (e.g. network|agent|nomination|window): a rescan that finds
    -- the same thing adds votes to the same flag instead of raising a new one.
    finding         text NOT NULL,
    category        text,
    nomination      text,
    evidence        jsonb NOT NULL DEFAULT '{}'::jsonb,
    status          text NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'released', 'voided', 'mixed')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    decided_at      timestamptz,
    decided_by      text,
    decision_reason text,
    UNIQUE (edition_id, detector, finding)
);
CREATE INDEX fraud_flags_open ON fraud_flags (edition_id, category, status);

CREATE TABLE fraud_flag_votes (
    flag_id    bigint NOT NULL REFERENCES fraud_flags (id) ON DELETE CASCADE,
    edition_id integer NOT NULL,
    voter_id   text NOT NULL,
    category   text NOT NULL,
    PRIMARY KEY (flag_id, voter_id, category),
    FOREIGN KEY (edition_id, voter_id, category)
        REFERENCES votes (edition_id, voter_id, category) ON DELETE CASCADE
);
CREATE INDEX fraud_flag_votes_vote ON fraud_flag_votes (edition_id, voter_id, category);

-- A nominator asks the committee to look again at its project's held or voided votes;
-- the committee answers on the record.
CREATE TABLE vote_review_requests (
    id          bigserial PRIMARY KEY,
    edition_id  integer NOT NULL REFERENCES editions (id) ON DELETE CASCADE,
    nomination  text NOT NULL,
    asked_by    bigint NOT NULL REFERENCES users (id),
    asked_at    timestamptz NOT NULL DEFAULT now(),
    message     text NOT NULL,
    answered_at timestamptz,
    answered_by text,
    answer      text
);
CREATE INDEX vote_review_requests_open ON vote_review_requests (edition_id, answered_at);
