-- Editions, their phases and categories, users with roles, and the append-only audit log.

CREATE TABLE editions (
    id           serial PRIMARY KEY,
    slug         text NOT NULL UNIQUE,
    name         text NOT NULL,
    timezone     text NOT NULL,
    rules        jsonb NOT NULL DEFAULT '{}'::jsonb,
    is_rehearsal boolean NOT NULL DEFAULT false,
    is_current   boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- At most one edition is the one the site shows.
CREATE UNIQUE INDEX editions_one_current ON editions ((true)) WHERE is_current;

CREATE TABLE phases (
    edition_id integer NOT NULL REFERENCES editions (id) ON DELETE CASCADE,
    name       text NOT NULL
               CHECK (name IN ('nominations', 'review', 'voting', 'expert_review', 'results')),
    opens_at   timestamptz NOT NULL,
    closes_at  timestamptz NOT NULL,
    PRIMARY KEY (edition_id, name),
    CHECK (closes_at > opens_at)
);

CREATE TABLE categories (
    edition_id  integer NOT NULL REFERENCES editions (id) ON DELETE CASCADE,
    code        text NOT NULL,
    name        text NOT NULL,
    facilitator text NOT NULL DEFAULT '',
    position    integer NOT NULL,
    PRIMARY KEY (edition_id, code)
);

CREATE TABLE users (
    id         bigserial PRIMARY KEY,
    email      text NOT NULL UNIQUE,
    roles      text[] NOT NULL DEFAULT '{}'
               CHECK (roles <@ ARRAY['organizer', 'expert', 'committee']::text[]),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Every decision, automatic or human: who (a user or a rule), when, what, why.
-- No foreign keys: the record must outlive what it speaks of (a dropped rehearsal).
CREATE TABLE audit_log (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor     text NOT NULL,
    action    text NOT NULL,
    edition   text,
    subject   text,
    reason    text,
    detail    jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_edition ON audit_log (edition, at);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

-- Sign-in links are single-use: what is kept is the hash of each used one.
CREATE TABLE used_links (
    token_hash text PRIMARY KEY,
    purpose    text NOT NULL,
    used_at    timestamptz NOT NULL DEFAULT now()
);

-- Mail goes out through an outbox: a message is committed with the change that caused
-- it, and a sender task delivers it (and retries) after the commit.
CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    to_addr         text NOT NULL,
    subject         text NOT NULL,
    body            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    sent_at         timestamptz,
    last_error      text
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE sent_at IS NULL;
