-- Least privilege for wsis_app (issue 16). 0006 gave the application SELECT, INSERT,
-- UPDATE and DELETE on every table, so it could move a vote to another nomination, void
-- one with no audit row, make itself an organizer (users.roles), reopen a frozen expert
-- review (phases) or delete used sign-in links, alarms, fraud flags and voters. From here
-- on it gets, table by table and column by column, what the code run by `voting serve`
-- (its workers, flushers, mail sender and fraud scan) does, found by reading every SQL
-- statement under voting/; nothing more. SELECT ... FOR UPDATE needs UPDATE on some
-- column of the table, so a table the code locks keeps one updatable column.
--
-- Whatever the application may not do, the owner does (README.md, "Database roles"):
-- `voting migrate`, `voting edition load|use`, `voting users add`, `voting rehearsal
-- create`, the fraud simulator and the bench run with the owner's URL.
--
-- A vote's verdict changes only through the SECURITY DEFINER functions below, each of
-- which changes the verdict and writes the audit row in one statement's work: wsis_app has
-- no UPDATE on votes at all, so no verdict changes off the record. Every other column of a
-- vote is immutable for every role, the owner included (trigger, like the audit log's).

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM wsis_app;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO wsis_app;

-- Editions, their calendar and categories are the owner's (edition load). The
-- application bumps an edition's revision (updated_at, voting.extend) and locks the row
-- (FOR UPDATE: extension, publication); the voting close moves through
-- extend_voting_close() below.
GRANT UPDATE (updated_at) ON editions TO wsis_app;

-- A user signs in (a row with no roles); roles are granted by `voting users add`, as the
-- owner. session_generation (0010) is bumped to sign a user out everywhere.
GRANT INSERT (email) ON users TO wsis_app;
GRANT UPDATE (session_generation) ON users TO wsis_app;

GRANT INSERT ON audit_log, used_links, issued_public_ids, voters, votes, ledger_alarms,
    expert_conflicts, result_signoffs, publications, publication_leaves,
    publication_levels, fraud_flag_votes TO wsis_app;

GRANT INSERT ON outbox TO wsis_app;
GRANT UPDATE (attempts, last_error, next_attempt_at, sent_at) ON outbox TO wsis_app;

-- Nominations: drafts, edits, submission and the organizers' decision. Never the row's
-- identity (id, public_id, edition, owner, idempotency key, creation time).
GRANT INSERT ON nominations TO wsis_app;
GRANT UPDATE (category, title, title_key, organization, organization_key, stakeholder_type,
    country, website, start_date, contact_email, summary, description, partners, languages,
    earlier_winner, search_text, updated_at, status, submitted_at, decision_reason,
    decided_by, decided_at, earlier_winner_marked) ON nominations TO wsis_app;

-- Organizers assign experts to categories and take them off again.
GRANT INSERT, DELETE ON expert_assignments TO wsis_app;
-- An expert's review and scores are upserted (the 0005 triggers freeze them after the
-- expert review closes).
GRANT INSERT ON expert_reviews, expert_scores TO wsis_app;
GRANT UPDATE (comment, updated_at) ON expert_reviews TO wsis_app;
GRANT UPDATE (score) ON expert_scores TO wsis_app;

-- A rescan that finds the same thing refreshes the flag's evidence; its decision
-- (status, decided_*) goes through decide_flag_votes().
GRANT INSERT ON fraud_flags TO wsis_app;
GRANT UPDATE (evidence) ON fraud_flags TO wsis_app;

GRANT INSERT ON vote_review_requests TO wsis_app;
GRANT UPDATE (answered_at, answered_by, answer) ON vote_review_requests TO wsis_app;

-- schema_migrations: SELECT only (from the blanket grant above); `voting serve` checks
-- that the schema is up to date.

-- Future tables: SELECT only. A later migration that creates a table the application
-- writes must GRANT exactly that (INSERT, or UPDATE (columns), or DELETE) itself, next to
-- the CREATE TABLE, and a test in tests/test_db_roles.py's matrix must say so; a SECURITY
-- DEFINER function must REVOKE EXECUTE ... FROM PUBLIC and GRANT EXECUTE to wsis_app.
-- (Run every migration as the same owner: default privileges belong to the role that
-- creates the objects.)
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON TABLES FROM wsis_app;


-- A vote is what the voter cast: only its verdict (verdict, verdict_reasons, verdict_at)
-- ever changes, whoever tries. Every other column (edition, voter, category, nomination,
-- receipt, cast_at, stream id, the signals the detectors read) stays as flushed.
CREATE FUNCTION vote_is_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (to_jsonb(NEW) - ARRAY['verdict', 'verdict_reasons', 'verdict_at'])
        IS DISTINCT FROM (to_jsonb(OLD) - ARRAY['verdict', 'verdict_reasons', 'verdict_at'])
    THEN
        RAISE EXCEPTION 'a vote is immutable: only its verdict may change'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER votes_immutable BEFORE UPDATE ON votes
    FOR EACH ROW EXECUTE FUNCTION vote_is_immutable();


-- The committee's decision on one vote: release it (it counts) or void it (it never
-- counts), with a reason, on the record. Returns the verdict it had (NULL: no such vote)
-- and whether it changed (false: the decision does not apply to that verdict).
CREATE FUNCTION decide_vote(
    p_edition_id integer, p_receipt text, p_action text, p_actor text, p_reason text,
    OUT previous text, OUT changed boolean, OUT voted_for text
) LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    target text := CASE p_action WHEN 'release' THEN 'released' WHEN 'void' THEN 'voided' END;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'a decision is release or void, not %', p_action
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(btrim(p_reason), '') = '' OR coalesce(btrim(p_actor), '') = '' THEN
        RAISE EXCEPTION 'a decision needs an actor and a reason, for the record'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT v.verdict, v.nomination INTO previous, voted_for FROM votes v
        WHERE v.edition_id = p_edition_id AND v.receipt = p_receipt FOR UPDATE;
    IF NOT FOUND THEN
        changed := false;
        RETURN;
    END IF;
    changed := (p_action = 'release' AND previous IN ('quarantined', 'voided'))
        OR (p_action = 'void' AND previous IN ('quarantined', 'released', 'counted'));
    IF NOT changed THEN
        RETURN;
    END IF;
    UPDATE votes SET verdict = target, verdict_at = now()
        WHERE edition_id = p_edition_id AND receipt = p_receipt;
    INSERT INTO audit_log (actor, action, edition, subject, reason, detail)
        SELECT p_actor, 'fraud.' || p_action, e.slug, 'receipt:' || p_receipt, p_reason,
               jsonb_build_object('from', previous, 'to', target, 'nomination', voted_for)
        FROM editions e WHERE e.id = p_edition_id;
END;
$$;

-- The committee's decision on a whole flag: every vote it holds in quarantine released or
-- voided, the flag marked, one audit row. Returns the number of votes changed, or NULL
-- when the edition has no such flag.
CREATE FUNCTION decide_flag_votes(
    p_edition_id integer, p_flag_id bigint, p_action text, p_actor text, p_reason text
) RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    target text := CASE p_action WHEN 'release' THEN 'released' WHEN 'void' THEN 'voided' END;
    moved integer;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'a decision is release or void, not %', p_action
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(btrim(p_reason), '') = '' OR coalesce(btrim(p_actor), '') = '' THEN
        RAISE EXCEPTION 'a decision needs an actor and a reason, for the record'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM 1 FROM fraud_flags WHERE id = p_flag_id AND edition_id = p_edition_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    UPDATE votes SET verdict = target, verdict_at = now()
        FROM fraud_flag_votes f
        WHERE f.flag_id = p_flag_id AND votes.edition_id = p_edition_id
          AND votes.voter_id = f.voter_id AND votes.category = f.category
          AND votes.verdict = 'quarantined';
    GET DIAGNOSTICS moved = ROW_COUNT;
    UPDATE fraud_flags SET status = target, decided_at = now(), decided_by = p_actor,
        decision_reason = p_reason WHERE id = p_flag_id;
    INSERT INTO audit_log (actor, action, edition, subject, reason, detail)
        SELECT p_actor, 'fraud.' || p_action || '_flag', e.slug, 'flag:' || p_flag_id,
               p_reason, jsonb_build_object('votes', moved, 'to', target)
        FROM editions e WHERE e.id = p_edition_id;
    RETURN moved;
END;
$$;

-- A detector's finding: the counted votes among the flag's that the caller names go to
-- quarantine, the flag's detector added to their reasons, one audit row when any moved.
-- Returns how many moved.
CREATE FUNCTION quarantine_flag_votes(p_flag_id bigint, p_voters text[], p_categories text[])
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    flag fraud_flags%ROWTYPE;
    moved integer;
BEGIN
    SELECT * INTO flag FROM fraud_flags WHERE id = p_flag_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no fraud flag %', p_flag_id USING ERRCODE = 'no_data_found';
    END IF;
    UPDATE votes SET verdict = 'quarantined', verdict_at = now(),
            verdict_reasons = array_append(verdict_reasons, flag.detector)
        FROM unnest(p_voters, p_categories) AS u(v, c), fraud_flag_votes f
        WHERE f.flag_id = flag.id AND f.voter_id = u.v AND f.category = u.c
          AND votes.edition_id = flag.edition_id AND votes.voter_id = u.v
          AND votes.category = u.c AND votes.verdict = 'counted';
    GET DIAGNOSTICS moved = ROW_COUNT;
    IF moved > 0 THEN
        INSERT INTO audit_log (actor, action, edition, subject, reason, detail)
            SELECT 'rule:' || flag.detector, 'fraud.quarantine', e.slug, 'flag:' || flag.id,
                   flag.detector, jsonb_build_object('votes', moved, 'evidence', flag.evidence)
            FROM editions e WHERE e.id = flag.edition_id;
    END IF;
    RETURN moved;
END;
$$;

-- An organizer moves the voting close later (`voting extend`, the organizer's page): only
-- later, never at or past the expert review's close, and the expert review's opening moves
-- with it when the new close passes it. The expert review's close is never touched, so a
-- closed (frozen) expert review cannot be reopened by the application. Returns the old
-- close. The caller checks, with its own clock, that voting is open, and audits.
CREATE FUNCTION extend_voting_close(p_edition_id integer, p_new_close timestamptz)
RETURNS timestamptz LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    voting phases%ROWTYPE;
    review phases%ROWTYPE;
BEGIN
    PERFORM 1 FROM editions WHERE id = p_edition_id FOR UPDATE;
    SELECT * INTO voting FROM phases WHERE edition_id = p_edition_id AND name = 'voting';
    SELECT * INTO review FROM phases WHERE edition_id = p_edition_id AND name = 'expert_review';
    IF voting.edition_id IS NULL OR review.edition_id IS NULL THEN
        RAISE EXCEPTION 'edition % has no voting and expert review phases', p_edition_id
            USING ERRCODE = 'no_data_found';
    END IF;
    IF p_new_close IS NULL OR p_new_close <= voting.closes_at THEN
        RAISE EXCEPTION 'the voting close only moves later (it is %)', voting.closes_at
            USING ERRCODE = 'check_violation';
    END IF;
    IF p_new_close >= review.closes_at THEN
        RAISE EXCEPTION 'the new close would swallow the whole expert review phase'
            USING ERRCODE = 'check_violation';
    END IF;
    UPDATE phases SET closes_at = p_new_close WHERE edition_id = p_edition_id AND name = 'voting';
    UPDATE phases SET opens_at = p_new_close
        WHERE edition_id = p_edition_id AND name = 'expert_review' AND opens_at < p_new_close;
    RETURN voting.closes_at;
END;
$$;

-- `voting rehearsal drop` and the fraud simulator remove a rehearsal edition with its
-- votes and voters (ON DELETE CASCADE); a real edition is refused. The application has no
-- DELETE on editions, votes or voters otherwise. Returns the number of votes removed.
CREATE FUNCTION drop_rehearsal_edition(p_edition_id integer)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    rehearsal boolean;
    removed bigint;
BEGIN
    SELECT is_rehearsal INTO rehearsal FROM editions WHERE id = p_edition_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF NOT rehearsal THEN
        RAISE EXCEPTION 'edition % is not a rehearsal: it is never dropped', p_edition_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT count(*) INTO removed FROM votes WHERE edition_id = p_edition_id;
    DELETE FROM editions WHERE id = p_edition_id;
    RETURN removed;
END;
$$;

REVOKE EXECUTE ON FUNCTION decide_vote(integer, text, text, text, text),
    decide_flag_votes(integer, bigint, text, text, text),
    quarantine_flag_votes(bigint, text[], text[]),
    extend_voting_close(integer, timestamptz),
    drop_rehearsal_edition(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION decide_vote(integer, text, text, text, text),
    decide_flag_votes(integer, bigint, text, text, text),
    quarantine_flag_votes(bigint, text[], text[]),
    extend_voting_close(integer, timestamptz),
    drop_rehearsal_edition(integer) TO wsis_app;
