-- Privacy by design (issue 20): the retention policy's purge (voting/privacy.py).
--
-- The application role still has no UPDATE on votes or voters, nor DELETE on the outbox:
-- erasure goes through the SECURITY DEFINER functions below, which decide what is due
-- from the database's clock and the edition's stored rules ([rules.privacy]), so the
-- application cannot erase evidence before the policy says, nor touch anything else.

-- The rules in force (an edition stored before this migration has the defaults, the
-- same as voting/privacy.py's DEFAULTS).
CREATE FUNCTION privacy_signal_days(p_rules jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce((p_rules -> 'privacy' ->> 'signals_days_after_publication')::integer, 30)
$$;

-- The outbox is not per edition: the current edition's rule (else the default).
CREATE FUNCTION privacy_outbox_hours() RETURNS integer
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT coalesce(
        (SELECT (rules -> 'privacy' ->> 'outbox_hours')::integer FROM editions WHERE is_current),
        24)
$$;

-- A vote is still what the voter cast: only its verdict changes, and now also its fraud
-- signals may be erased (set to NULL, never to another value). Its edition, voter,
-- category, nomination, receipt, instant and stream id never change, whoever tries.
CREATE OR REPLACE FUNCTION vote_is_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    signals text[] := ARRAY['ip', 'network', 'user_agent', 'email_domain', 'form_age_ms',
                            'form_nonce'];
    kept text[] := ARRAY['verdict', 'verdict_reasons', 'verdict_at'] || signals;
    col text;
BEGIN
    IF (to_jsonb(NEW) - kept) IS DISTINCT FROM (to_jsonb(OLD) - kept) THEN
        RAISE EXCEPTION 'a vote is immutable: only its verdict may change'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    FOREACH col IN ARRAY signals LOOP
        IF (to_jsonb(NEW) -> col) IS DISTINCT FROM (to_jsonb(OLD) -> col)
           AND (to_jsonb(NEW) -> col) <> 'null'::jsonb THEN
            RAISE EXCEPTION 'a vote is immutable: its % may only be erased', col
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END LOOP;
    RETURN NEW;
END;
$$;

-- Erase the fraud signals of up to p_batch votes and p_batch voters whose edition's
-- results were published longer ago than its signals_days_after_publication. Returns
-- how many rows of each it erased. Nothing else of a vote is touched.
CREATE FUNCTION purge_signals(p_batch integer, OUT votes integer, OUT voters integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    WITH due AS (
        SELECT v.edition_id, v.voter_id, v.category
        FROM votes v JOIN editions e ON e.id = v.edition_id
        JOIN publications p ON p.edition_id = e.id
        WHERE p.published_at + make_interval(days => privacy_signal_days(e.rules)) <= now()
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
        SELECT v.edition_id, v.voter_id
        FROM voters v JOIN editions e ON e.id = v.edition_id
        JOIN publications p ON p.edition_id = e.id
        WHERE p.published_at + make_interval(days => privacy_signal_days(e.rules)) <= now()
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

-- Delete up to p_batch mails older than the outbox rule: delivered ones, counted from
-- delivery, and ones the sender gave up on (8 attempts, voting/mail.py MAX_ATTEMPTS),
-- counted from their creation. Mail still being retried is never deleted. Returns how
-- many.
CREATE FUNCTION purge_outbox(p_batch integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    deleted integer;
BEGIN
    DELETE FROM outbox WHERE id IN (
        SELECT id FROM outbox
        WHERE coalesce(sent_at, CASE WHEN attempts >= 8 THEN created_at END)
              + make_interval(hours => privacy_outbox_hours()) <= now()
        ORDER BY id LIMIT greatest(p_batch, 1)
        FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END;
$$;

REVOKE EXECUTE ON FUNCTION purge_signals(integer), purge_outbox(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION purge_signals(integer), purge_outbox(integer) TO wsis_app;

-- A nominator may withdraw a nomination until public voting opens (voting/nominations/
-- workflow.py, withdraw): its status becomes 'withdrawn' and its contact address is
-- erased, as nothing needs it any more. A withdrawn nomination may be incomplete (a
-- withdrawn draft) and has no contact address.
ALTER TABLE nominations DROP CONSTRAINT nominations_status_check;
ALTER TABLE nominations ADD CONSTRAINT nominations_status_check
    CHECK (status IN ('draft', 'submitted', 'returned', 'accepted', 'rejected', 'withdrawn'));
ALTER TABLE nominations DROP CONSTRAINT nominations_check;
ALTER TABLE nominations ADD CONSTRAINT nominations_check
    CHECK (status IN ('draft', 'returned', 'withdrawn') OR (
        organization <> '' AND country <> '' AND summary <> '' AND description <> ''
        AND stakeholder_type IS NOT NULL AND website IS NOT NULL AND start_date IS NOT NULL
        AND contact_email IS NOT NULL AND cardinality(languages) > 0
        AND submitted_at IS NOT NULL));
