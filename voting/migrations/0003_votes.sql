-- The vote ledger: the source of truth. Redis counters are only the live view.

-- A voter who proved an email address. voter_id is an HMAC of the normalized mailbox,
-- never the address; the domain is kept for the per-domain fraud checks.
CREATE TABLE voters (
    edition_id  integer NOT NULL REFERENCES editions (id) ON DELETE CASCADE,
    voter_id    text NOT NULL,
    domain      text NOT NULL,
    verified_at timestamptz NOT NULL DEFAULT now(),
    ip          text,
    user_agent  text,
    PRIMARY KEY (edition_id, voter_id)
);

CREATE TABLE votes (
    edition_id    integer NOT NULL REFERENCES editions (id) ON DELETE CASCADE,
    voter_id      text NOT NULL,
    category      text NOT NULL,
    nomination    text NOT NULL,
    receipt       text NOT NULL,
    -- The instant Redis TIME gave when the script accepted the vote.
    cast_at       timestamptz NOT NULL,
    stream_id     text NOT NULL,
    -- Under the completeness rule a vote is held until the voter's ballot is complete.
    held_at_cast  boolean NOT NULL DEFAULT false,
    ip            text,
    user_agent    text,
    form_age_ms   integer,
    flushed_at    timestamptz NOT NULL DEFAULT now(),
    -- One vote per voter per category: a replayed stream entry changes nothing.
    PRIMARY KEY (edition_id, voter_id, category),
    UNIQUE (edition_id, receipt)
);
CREATE INDEX votes_nomination ON votes (edition_id, nomination);
CREATE INDEX votes_cast_at ON votes (edition_id, cast_at);

-- Alarms the flusher raised: an entry that XAUTOCLAIM reported deleted before it was
-- flushed is a lost vote, and `voting reconcile` fails while any is unresolved.
CREATE TABLE ledger_alarms (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    edition    text NOT NULL,
    stream_key text NOT NULL,
    entry_id   text NOT NULL,
    kind       text NOT NULL,
    UNIQUE (stream_key, entry_id, kind)
);
