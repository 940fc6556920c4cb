-- Minimise at the door (issue 20): a vote and a voter keep the kept prefix of the client's
-- address (/24 IPv4, /64 IPv6: every width the detectors compare derives from it), a
-- keyed hash of the address (HMAC-SHA256 under a key derived from VOTING_SECRET_KEY:
-- equality only, for the per-address limit and declared networks narrower than the
-- prefix) and a summary of the agent (family, major version, platform, automation
-- traces; voting/antifraud/minimise.py). Never the full address nor the full agent.
--
-- Rows stored before this migration: the prefix is computed here, in SQL; the hash needs
-- the key and the agent's summary the engine's parser, neither of which the database
-- has, so their full `ip` and `user_agent` stay until `voting privacy purge` (every ten
-- minutes in `serve`) minimises them through minimise_vote_signals and
-- minimise_voter_signals below, which erase both in the same statement. The detectors
-- read the prefix (or, until then, the old address) and summarise the old agent
-- themselves, so a row reads the same before and after.

ALTER TABLE votes ADD COLUMN ip_hash text, ADD COLUMN ip_prefix text, ADD COLUMN agent text;
ALTER TABLE voters ADD COLUMN ip_hash text, ADD COLUMN ip_prefix text, ADD COLUMN agent text;

-- The kept prefix of an address as voting/antifraud/minimise.py's kept_prefix writes it
-- ('192.0.2.0/24', '2001:db8:1:2::/64'; an IPv4-mapped address as its IPv4); NULL for
-- anything that is not an address.
CREATE FUNCTION kept_prefix(p_ip text) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = public, pg_temp AS $$
DECLARE
    a inet;
BEGIN
    IF p_ip IS NULL OR p_ip = '' THEN
        RETURN NULL;
    END IF;
    BEGIN
        a := split_part(btrim(p_ip), '%', 1)::inet;
    EXCEPTION WHEN invalid_text_representation THEN
        RETURN NULL;
    END;
    IF masklen(a) <> (CASE family(a) WHEN 4 THEN 32 ELSE 128 END) THEN
        RETURN NULL;  -- a network, not an address
    END IF;
    IF family(a) = 6 AND a << '::ffff:0.0.0.0/96'::inet THEN
        a := substring(host(a) FROM 8)::inet;  -- after '::ffff:'
    END IF;
    RETURN text(network(set_masklen(a, CASE family(a) WHEN 4 THEN 24 ELSE 64 END)));
END;
$$;

-- A vote's signals may be erased (set to NULL, never to another value), as in 0013, and
-- once, for a row stored before this migration, minimised: its full address and agent
-- erased and, in the same statement, its hash and agent's summary written where there
-- were none, its prefix the one its address gives. Nothing else of a vote ever changes.
CREATE OR REPLACE FUNCTION vote_is_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    signals text[] := ARRAY['ip', 'network', 'user_agent', 'email_domain', 'form_age_ms',
                            'form_nonce', 'ip_hash', 'ip_prefix', 'agent'];
    kept text[] := ARRAY['verdict', 'verdict_reasons', 'verdict_at'] || signals;
    minimised boolean;
    col text;
BEGIN
    IF (to_jsonb(NEW) - kept) IS DISTINCT FROM (to_jsonb(OLD) - kept) THEN
        RAISE EXCEPTION 'a vote is immutable: only its verdict may change'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    FOREACH col IN ARRAY signals LOOP
        IF (to_jsonb(NEW) -> col) IS DISTINCT FROM (to_jsonb(OLD) -> col)
           AND (to_jsonb(NEW) -> col) <> 'null'::jsonb THEN
            minimised := (to_jsonb(OLD) -> col) = 'null'::jsonb AND CASE col
                WHEN 'ip_hash' THEN OLD.ip IS NOT NULL AND NEW.ip IS NULL
                WHEN 'ip_prefix' THEN OLD.ip IS NOT NULL AND NEW.ip IS NULL
                                      AND NEW.ip_prefix = kept_prefix(OLD.ip)
                WHEN 'agent' THEN OLD.user_agent IS NOT NULL AND NEW.user_agent IS NULL
                                  AND length(NEW.agent) <= 96
                ELSE false END;
            -- IS NOT TRUE: a comparison with NULL (an old `ip` that is no address has no
            -- kept prefix) is no permission either.
            IF minimised IS NOT TRUE THEN
                RAISE EXCEPTION 'a vote is immutable: its % may only be erased', col
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
        END IF;
    END LOOP;
    RETURN NEW;
END;
$$;

-- The prefix of the rows already stored: the one conversion SQL can make. The trigger
-- lets a prefix be written only with its address erased, which these rows cannot be yet
-- (their hash needs the key): the owner's migration steps past it, in this transaction.
ALTER TABLE votes DISABLE TRIGGER votes_immutable;
UPDATE votes SET ip_prefix = kept_prefix(ip) WHERE ip IS NOT NULL AND ip_prefix IS NULL;
ALTER TABLE votes ENABLE TRIGGER votes_immutable;
UPDATE voters SET ip_prefix = kept_prefix(ip) WHERE ip IS NOT NULL AND ip_prefix IS NULL;

-- Whether a text is a kept prefix exactly as kept_prefix writes it: an IPv4 /24 or an
-- IPv6 /64 network in canonical text (no leading zeros, the longest zero run as '::',
-- lowercase). A regular expression first, so that the cast only ever sees a valid /64 (a
-- cast that fails would raise, and an EXCEPTION block costs a subtransaction a row); then
-- the cast's own text, so that one network has one spelling. One expression a row (the
-- ':' says which), since the flusher's COPY checks every vote: a few microseconds a row.
-- LANGUAGE sql, no SET: the planner may inline it.
CREATE FUNCTION is_kept_prefix(p text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN strpos(p, ':') = 0 THEN
            p ~ '^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){2}\.0/24$'
        WHEN p ~ '^((0|[1-9a-f][0-9a-f]{0,3})(:(0|[1-9a-f][0-9a-f]{0,3})){0,3})?::/64$'
            THEN text(p::cidr) = p
        ELSE false
    END
$$;

-- Defence in depth: the column grants below keep the engine out of `ip` and `user_agent`;
-- these keep what it may write from being a full address or agent by another name. A
-- prefix is a /24 or a /64 (never an address), a hash the 128-bit hex digest
-- minimise.address_hash writes (32 bytes, none but 0-9a-f: the same as '^[0-9a-f]{32}$'
-- at a fraction of its cost), a summary fits AGENT_MAX. (NULL passes a check: no value.)
ALTER TABLE votes
    ADD CONSTRAINT votes_ip_prefix_kept CHECK (ip_prefix IS NULL OR is_kept_prefix(ip_prefix)),
    ADD CONSTRAINT votes_ip_hash_keyed
        CHECK (octet_length(ip_hash) = 32 AND ip_hash !~ '[^0-9a-f]'),
    ADD CONSTRAINT votes_agent_summary CHECK (length(agent) <= 96);
ALTER TABLE voters
    ADD CONSTRAINT voters_ip_prefix_kept CHECK (ip_prefix IS NULL OR is_kept_prefix(ip_prefix)),
    ADD CONSTRAINT voters_ip_hash_keyed
        CHECK (octet_length(ip_hash) = 32 AND ip_hash !~ '[^0-9a-f]'),
    ADD CONSTRAINT voters_agent_summary CHECK (length(agent) <= 96);

-- The rows still to minimise (below): the purge asks for them every ten minutes, and they
-- are a few old rows among the whole ledger, or none; these indexes hold only them, so
-- the question reads them, not every vote (tests/antifraud/test_minimise.py shows the plan).
CREATE INDEX votes_unminimised ON votes (edition_id)
    WHERE ip IS NOT NULL OR user_agent IS NOT NULL;
CREATE INDEX voters_unminimised ON voters (edition_id)
    WHERE ip IS NOT NULL OR user_agent IS NOT NULL;

-- Minimise rows stored before this migration, a batch at a time: the caller (the purge,
-- which holds the key) gives each row's hash and agent's summary; the prefix comes from
-- the row's own address, here. Only rows that still hold a full address or agent are
-- touched, and both are erased. Returns how many rows changed. Its limit: the database
-- cannot check a hash without the key, so a compromised application could write a wrong
-- hash on an old row, as it could on any vote it flushes.
CREATE FUNCTION minimise_vote_signals(
    p_edition integer, p_voters text[], p_categories text[], p_hashes text[], p_agents text[]
) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    changed integer;
BEGIN
    UPDATE votes v SET
        ip_hash = CASE WHEN v.ip IS NOT NULL AND v.ip_hash IS NULL
                       THEN nullif(left(u.h, 64), '') ELSE v.ip_hash END,
        ip_prefix = CASE WHEN v.ip IS NOT NULL AND v.ip_prefix IS NULL
                         THEN kept_prefix(v.ip) ELSE v.ip_prefix END,
        agent = CASE WHEN v.user_agent IS NOT NULL AND v.agent IS NULL
                     THEN nullif(left(u.a, 96), '') ELSE v.agent END,
        ip = NULL, user_agent = NULL
    FROM unnest(p_voters, p_categories, p_hashes, p_agents) AS u(v, c, h, a)
    WHERE v.edition_id = p_edition AND v.voter_id = u.v AND v.category = u.c
      AND (v.ip IS NOT NULL OR v.user_agent IS NOT NULL);
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed;
END;
$$;

CREATE FUNCTION minimise_voter_signals(
    p_edition integer, p_voters text[], p_hashes text[], p_agents text[]
) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    changed integer;
BEGIN
    UPDATE voters v SET
        ip_hash = CASE WHEN v.ip IS NOT NULL AND v.ip_hash IS NULL
                       THEN nullif(left(u.h, 64), '') ELSE v.ip_hash END,
        ip_prefix = CASE WHEN v.ip IS NOT NULL AND v.ip_prefix IS NULL
                         THEN kept_prefix(v.ip) ELSE v.ip_prefix END,
        agent = CASE WHEN v.user_agent IS NOT NULL AND v.agent IS NULL
                     THEN nullif(left(u.a, 96), '') ELSE v.agent END,
        ip = NULL, user_agent = NULL
    FROM unnest(p_voters, p_hashes, p_agents) AS u(v, h, a)
    WHERE v.edition_id = p_edition AND v.voter_id = u.v
      AND (v.ip IS NOT NULL OR v.user_agent IS NOT NULL);
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed;
END;
$$;

-- The purge erases the new signals with the others (0013, 0019's rule of when).
CREATE OR REPLACE FUNCTION purge_signals(p_batch integer, OUT votes integer, OUT voters integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    WITH due AS (
        SELECT v.edition_id, v.voter_id, v.category FROM votes v
        WHERE v.edition_id IN (SELECT id FROM editions WHERE privacy_signals_due(id))
          AND (v.ip, v.network, v.user_agent, v.email_domain, v.form_age_ms, v.form_nonce,
               v.ip_hash, v.ip_prefix, v.agent)
              IS DISTINCT FROM (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
        LIMIT greatest(p_batch, 1)
        FOR UPDATE OF v SKIP LOCKED
    )
    UPDATE votes t SET ip = NULL, network = NULL, user_agent = NULL, email_domain = NULL,
        form_age_ms = NULL, form_nonce = NULL, ip_hash = NULL, ip_prefix = NULL, agent = NULL
    FROM due
    WHERE t.edition_id = due.edition_id AND t.voter_id = due.voter_id
      AND t.category = due.category;
    GET DIAGNOSTICS votes = ROW_COUNT;
    WITH due AS (
        SELECT v.edition_id, v.voter_id FROM voters v
        WHERE v.edition_id IN (SELECT id FROM editions WHERE privacy_signals_due(id))
          AND (v.ip IS NOT NULL OR v.network IS NOT NULL OR v.user_agent IS NOT NULL
               OR v.domain <> '' OR v.ip_hash IS NOT NULL OR v.ip_prefix IS NOT NULL
               OR v.agent IS NOT NULL)
        LIMIT greatest(p_batch, 1)
        FOR UPDATE OF v SKIP LOCKED
    )
    UPDATE voters t SET ip = NULL, network = NULL, user_agent = NULL, domain = '',
        ip_hash = NULL, ip_prefix = NULL, agent = NULL
    FROM due WHERE t.edition_id = due.edition_id AND t.voter_id = due.voter_id;
    GET DIAGNOSTICS voters = ROW_COUNT;
END;
$$;

REVOKE EXECUTE ON FUNCTION minimise_vote_signals(integer, text[], text[], text[], text[]),
    minimise_voter_signals(integer, text[], text[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION minimise_vote_signals(integer, text[], text[], text[], text[]),
    minimise_voter_signals(integer, text[], text[], text[]) TO wsis_app;

-- The application never writes a full address or agent again: INSERT by column, all but
-- `ip` and `user_agent` (0011's rule: exactly what the code does). A column a later
-- migration adds to these tables needs its own GRANT INSERT.
REVOKE INSERT ON votes, voters FROM wsis_app;
GRANT INSERT (edition_id, voter_id, category, nomination, receipt, cast_at, stream_id,
    held_at_cast, form_age_ms, flushed_at, verdict, verdict_reasons, verdict_at,
    email_domain, network, form_nonce, ip_hash, ip_prefix, agent) ON votes TO wsis_app;
GRANT INSERT (edition_id, voter_id, domain, verified_at, network, ip_hash, ip_prefix, agent)
    ON voters TO wsis_app;
