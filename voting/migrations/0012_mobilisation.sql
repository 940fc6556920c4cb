-- Declared mobilisation (issue 17) and the record of refused sign-ins.
--
-- A nominator declares its campaign for a nomination: the email domains and office
-- networks its supporters vote from, how many votes it expects, and when. Organizers
-- approve or reject the declaration on the record (audit_log). Votes matching an approved
-- declaration are shown to the committee as declared support and are not quarantined for
-- the concentration the declaration explains (voting/antifraud/declarations.py).
CREATE TABLE mobilisations (
    id              bigserial PRIMARY KEY,
    edition_id      integer NOT NULL REFERENCES editions (id) ON DELETE CASCADE,
    nomination      text NOT NULL,
    declared_by     bigint NOT NULL REFERENCES users (id),
    declared_at     timestamptz NOT NULL DEFAULT now(),
    -- Lower-case IDNA (ASCII) domains; networks as CIDR, IPv4 or IPv6.
    domains         text[] NOT NULL DEFAULT '{}',
    networks        cidr[] NOT NULL DEFAULT '{}',
    expected_votes  integer NOT NULL CHECK (expected_votes > 0),
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL,
    note            text NOT NULL DEFAULT '',
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'approved', 'rejected')),
    decided_by      text,
    decided_at      timestamptz,
    decision_reason text,
    CHECK (starts_at < ends_at),
    CHECK (cardinality(domains) + cardinality(networks) > 0)
);
CREATE INDEX mobilisations_by_nomination ON mobilisations (edition_id, nomination, status);
CREATE INDEX mobilisations_queue ON mobilisations (edition_id, status, declared_at);

-- Sign-ins refused at the door (the limiter's 429, a throwaway domain) or challenged:
-- per network prefix (/24, /48) and email domain only, never an address or a full IP.
CREATE TABLE signin_refusals (
    id         bigserial PRIMARY KEY,
    edition_id integer REFERENCES editions (id) ON DELETE CASCADE,
    at         timestamptz NOT NULL DEFAULT now(),
    network    text NOT NULL DEFAULT '',
    domain     text NOT NULL DEFAULT '',
    reason     text NOT NULL,
    -- 'voter' (the voters' confirmation links) or 'staff' (nominators' and staff sign-in).
    audience   text NOT NULL DEFAULT 'voter' CHECK (audience IN ('voter', 'staff'))
);
CREATE INDEX signin_refusals_by_edition ON signin_refusals (edition_id, at);

-- The application's rights on these tables, exactly what the code does (0011's rule: no
-- more than that, whatever the default privileges of the migrating role say).
REVOKE ALL ON mobilisations, signin_refusals FROM wsis_app;
GRANT SELECT, INSERT ON mobilisations TO wsis_app;
-- An organizer's decision; the declaration itself never changes once made.
GRANT UPDATE (status, decided_by, decided_at, decision_reason) ON mobilisations TO wsis_app;
GRANT SELECT, INSERT ON signin_refusals TO wsis_app;
GRANT USAGE, SELECT ON SEQUENCE mobilisations_id_seq, signin_refusals_id_seq TO wsis_app;
