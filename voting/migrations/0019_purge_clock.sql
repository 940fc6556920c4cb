-- The purge's clock is the database's, not the application's: `published_at` is written
-- by the application (the engine's injected clock), so an application role that wrote
-- a publication dated years ago would make every fraud signal of the edition due for
-- erasure at once (found by review). `recorded_at` is when the row really arrived,
-- which the application cannot write, and a signal is due only counted from the later
-- of the two.
ALTER TABLE publications ADD COLUMN recorded_at timestamptz NOT NULL DEFAULT now();

REVOKE INSERT ON publications FROM wsis_app;
GRANT INSERT (id, edition_id, published_at, published_by, digest, merkle_root, leaf_count,
    signers, rules, results) ON publications TO wsis_app;

-- The one statement of when an edition's fraud signals are due for erasure: the purge
-- and its dry run (voting/privacy.py) both ask it.
CREATE FUNCTION privacy_signals_due(p_edition integer) RETURNS boolean
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT EXISTS (
        SELECT 1 FROM publications p JOIN editions e ON e.id = p.edition_id
        WHERE p.edition_id = p_edition
          AND greatest(p.published_at, p.recorded_at)
              + make_interval(days => privacy_signal_days(e.rules)) <= now())
$$;

CREATE OR REPLACE FUNCTION purge_signals(p_batch integer, OUT votes integer, OUT voters integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    WITH due AS (
        SELECT v.edition_id, v.voter_id, v.category FROM votes v
        WHERE v.edition_id IN (SELECT id FROM editions WHERE privacy_signals_due(id))
          AND (v.ip, v.network, v.user_agent, v.email_domain, v.form_age_ms, v.form_nonce)
              IS DISTINCT FROM (NULL, NULL, NULL, NULL, NULL, NULL)
        LIMIT greatest(p_batch, 1)
        FOR UPDATE OF v SKIP LOCKED
    )
    UPDATE votes t SET ip = NULL, network = NULL, user_agent = NULL, email_domain = NULL,
        form_age_ms = NULL, form_nonce = NULL
    FROM due
    WHERE t.edition_id = due.edition_id AND t.voter_id = due.voter_id
      AND t.category = due.category;
    GET DIAGNOSTICS votes = ROW_COUNT;
    WITH due AS (
        SELECT v.edition_id, v.voter_id FROM voters v
        WHERE v.edition_id IN (SELECT id FROM editions WHERE privacy_signals_due(id))
          AND (v.ip IS NOT NULL OR v.network IS NOT NULL OR v.user_agent IS NOT NULL
               OR v.domain <> '')
        LIMIT greatest(p_batch, 1)
        FOR UPDATE OF v SKIP LOCKED
    )
    UPDATE voters t SET ip = NULL, network = NULL, user_agent = NULL, domain = ''
    FROM due WHERE t.edition_id = due.edition_id AND t.voter_id = due.voter_id;
    GET DIAGNOSTICS voters = ROW_COUNT;
END;
$$;
