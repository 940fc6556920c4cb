-- Results: experts assigned to categories, their conflicts of interest and scores, the
-- committee's sign-offs, and publications with the Merkle root of the counted votes.

CREATE TABLE expert_assignments (
    edition_id  integer NOT NULL REFERENCES editions (id) ON DELETE CASCADE,
    user_id     bigint NOT NULL REFERENCES users (id),
    category    text NOT NULL,
    assigned_by text NOT NULL,
    assigned_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (edition_id, user_id, category),
    -- Deferred like nominations': an edition reload re-inserts its categories.
    FOREIGN KEY (edition_id, category) REFERENCES categories (edition_id, code)
        DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX expert_assignments_by_category ON expert_assignments (edition_id, category);

-- A declared conflict recuses the expert from that nomination; it cannot be withdrawn.
CREATE TABLE expert_conflicts (
    edition_id  integer NOT NULL REFERENCES editions (id) ON DELETE CASCADE,
    user_id     bigint NOT NULL REFERENCES users (id),
    nomination  text NOT NULL REFERENCES nominations (public_id) ON DELETE CASCADE,
    reason      text NOT NULL DEFAULT '',
    declared_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (edition_id, user_id, nomination)
);

-- One expert's review of one nomination: the comment here, a score per criterion below.
CREATE TABLE expert_reviews (
    edition_id integer NOT NULL REFERENCES editions (id) ON DELETE CASCADE,
    user_id    bigint NOT NULL REFERENCES users (id),
    nomination text NOT NULL REFERENCES nominations (public_id) ON DELETE CASCADE,
    comment    text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (edition_id, user_id, nomination)
);

CREATE TABLE expert_scores (
    edition_id integer NOT NULL,
    user_id    bigint NOT NULL,
    nomination text NOT NULL,
    criterion  text NOT NULL,
    score      numeric NOT NULL,
    PRIMARY KEY (edition_id, user_id, nomination, criterion),
    FOREIGN KEY (edition_id, user_id, nomination)
        REFERENCES expert_reviews (edition_id, user_id, nomination) ON DELETE CASCADE
);

-- Scores, comments and conflicts can change only while the expert review phase is open;
-- after it closes they are frozen, whatever client writes. Checked here as well as in
-- the application, with the database's clock. An edition being dropped still takes its
-- rows with it.
CREATE FUNCTION expert_review_is_open() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    edition integer := CASE WHEN TG_OP = 'DELETE' THEN OLD.edition_id ELSE NEW.edition_id END;
    review  phases%ROWTYPE;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM editions WHERE id = edition) THEN
        RETURN OLD;  -- the edition is being dropped and takes its rows along
    END IF;
    SELECT * INTO review FROM phases WHERE edition_id = edition AND name = 'expert_review';
    IF FOUND AND NOT (review.opens_at <= now() AND now() < review.closes_at) THEN
        RAISE EXCEPTION 'expert scores are frozen: the expert review is open from % to %',
            review.opens_at, review.closes_at
            USING ERRCODE = 'check_violation', HINT = 'expert_review_closed';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END;
$$;
CREATE TRIGGER expert_reviews_frozen BEFORE INSERT OR UPDATE OR DELETE ON expert_reviews
    FOR EACH ROW EXECUTE FUNCTION expert_review_is_open();
CREATE TRIGGER expert_scores_frozen BEFORE INSERT OR UPDATE OR DELETE ON expert_scores
    FOR EACH ROW EXECUTE FUNCTION expert_review_is_open();
CREATE TRIGGER expert_conflicts_frozen BEFORE INSERT OR UPDATE OR DELETE ON expert_conflicts
    FOR EACH ROW EXECUTE FUNCTION expert_review_is_open();

-- A committee member's signature on one exact state of the results: `digest` covers the
-- figures, the winners, the rule and the ledger fingerprint, so a signature given before
-- a score or a verdict changed does not count for the new state.
CREATE TABLE result_signoffs (
    edition_id integer NOT NULL REFERENCES editions (id) ON DELETE CASCADE,
    user_id    bigint NOT NULL REFERENCES users (id),
    digest     text NOT NULL,
    signed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (edition_id, user_id, digest)
);

-- At most one publication per edition; it never changes once written.
CREATE TABLE publications (
    id           serial PRIMARY KEY,
    edition_id   integer NOT NULL UNIQUE REFERENCES editions (id) ON DELETE CASCADE,
    published_at timestamptz NOT NULL DEFAULT now(),
    published_by text NOT NULL,
    digest       text NOT NULL,
    merkle_root  text NOT NULL,
    leaf_count   integer NOT NULL,
    signers      text[] NOT NULL,
    rules        jsonb NOT NULL,   -- the result rules in force, as written into the edition
    results      jsonb NOT NULL    -- every category's table, winners and shortlist
);

-- The published leaves (sorted by leaf hash: position is the leaf's index in the tree),
-- so the export and the receipts' proofs stay those of the publication whatever the
-- ledger's verdicts do later.
CREATE TABLE publication_leaves (
    publication_id integer NOT NULL REFERENCES publications (id) ON DELETE CASCADE,
    position       integer NOT NULL,
    receipt_digest bytea NOT NULL,
    category       text NOT NULL,
    nomination     text NOT NULL,
    PRIMARY KEY (publication_id, position)
);
CREATE INDEX publication_leaves_by_receipt ON publication_leaves (publication_id, receipt_digest);

-- Each level of the tree as one string of 32-byte hashes. Stored uncompressed so a proof
-- reads its few hashes with substring() without reading whole levels.
CREATE TABLE publication_levels (
    publication_id integer NOT NULL REFERENCES publications (id) ON DELETE CASCADE,
    level          integer NOT NULL,
    hashes         bytea NOT NULL,
    PRIMARY KEY (publication_id, level)
);
ALTER TABLE publication_levels ALTER COLUMN hashes SET STORAGE EXTERNAL;

CREATE FUNCTION publication_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a publication is final: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER publications_final BEFORE UPDATE ON publications
    FOR EACH ROW EXECUTE FUNCTION publication_is_final();
CREATE TRIGGER publication_leaves_final BEFORE UPDATE ON publication_leaves
    FOR EACH ROW EXECUTE FUNCTION publication_is_final();
CREATE TRIGGER publication_levels_final BEFORE UPDATE ON publication_levels
    FOR EACH ROW EXECUTE FUNCTION publication_is_final();
