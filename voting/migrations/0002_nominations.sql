-- Nominations: projects submitted into one category of an edition, and their review.

-- Every public id ever handed out, kept even when its nomination is gone (a dropped
-- rehearsal edition cascades), so that no id is ever reused for another project.
CREATE TABLE issued_public_ids (
    public_id text PRIMARY KEY CHECK (public_id ~ '^N[0-9A-HJKMNP-TV-Z]{8}$'),
    issued_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE nominations (
    id                    bigserial PRIMARY KEY,
    public_id             text NOT NULL UNIQUE REFERENCES issued_public_ids (public_id),
    edition_id            integer NOT NULL REFERENCES editions (id) ON DELETE CASCADE,
    category              text NOT NULL,
    status                text NOT NULL DEFAULT 'draft'
                          CHECK (status IN ('draft', 'submitted', 'returned', 'accepted', 'rejected')),
    owner_id              bigint NOT NULL REFERENCES users (id),
    -- A double click on a form's submit button sends the same key twice: one nomination.
    idempotency_key       text,
    title                 text NOT NULL,
    title_key             text NOT NULL,          -- normalized: case, accents, punctuation
    organization          text NOT NULL DEFAULT '',
    organization_key      text NOT NULL DEFAULT '',
    stakeholder_type      text CHECK (stakeholder_type IN ('government', 'private_sector',
                              'civil_society', 'international_organization', 'academia', 'other')),
    country               text NOT NULL DEFAULT '' CHECK (country = '' OR country ~ '^[A-Z]{2}$'),
    website               text,
    start_date            date,
    contact_email         text,
    summary               text NOT NULL DEFAULT '',
    description           text NOT NULL DEFAULT '',
    partners              text[] NOT NULL DEFAULT '{}',
    languages             text[] NOT NULL DEFAULT '{}',
    earlier_winner        boolean NOT NULL DEFAULT false,  -- declared by the nominator
    earlier_winner_marked boolean NOT NULL DEFAULT false,  -- found by an organizer
    -- Title, organization and country (code and name), normalized; what search matches.
    search_text           text NOT NULL DEFAULT '',
    search                tsvector GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED,
    decision_reason       text,
    decided_by            bigint REFERENCES users (id),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    submitted_at          timestamptz,
    decided_at            timestamptz,
    UNIQUE (owner_id, idempotency_key),
    -- Deferred: an edition is replaced (before its voting opens) by deleting and
    -- re-inserting its categories in one transaction; the check runs at commit, so a
    -- category that still exists keeps its nominations and one with nominations cannot go.
    FOREIGN KEY (edition_id, category) REFERENCES categories (edition_id, code)
        DEFERRABLE INITIALLY DEFERRED,
    -- Whatever reached the organizers is complete; drafts and returned ones may not be.
    CHECK (status IN ('draft', 'returned') OR (
        organization <> '' AND country <> '' AND summary <> '' AND description <> ''
        AND stakeholder_type IS NOT NULL AND website IS NOT NULL AND start_date IS NOT NULL
        AND contact_email IS NOT NULL AND cardinality(languages) > 0
        AND submitted_at IS NOT NULL)),
    CHECK (status NOT IN ('accepted', 'rejected', 'returned') OR decided_at IS NOT NULL)
);

-- The public list and the organizers' queue.
CREATE INDEX nominations_by_status ON nominations (edition_id, status, category);
-- The submission rules: same organization, same title or same category.
CREATE INDEX nominations_by_organization ON nominations (edition_id, organization_key);
CREATE INDEX nominations_by_owner ON nominations (owner_id);
-- Public search by title, organization and country (pg_trgm is not assumed).
CREATE INDEX nominations_search ON nominations USING gin (search);
