-- Never stuck at the end (issue 19): organizers extend the expert review on the record and
-- invite staff (experts, committee) from a page. Both change rows the application may not
-- write (phases, users.roles), so each goes through one SECURITY DEFINER function that
-- allows exactly that change; the caller writes the audit row in the same transaction.

-- The expert review's close moves later only, and only before the results are
-- published. A review that had already closed opens again until the new close (the
-- freeze triggers of 0005 read the phases table); the results phase opens at the new
-- close when it opened earlier, and the new close must stay before the results close.
-- The caller checks with its own clock that the new close is in the future. Returns the
-- old close.
CREATE FUNCTION extend_expert_review_close(p_edition_id integer, p_new_close timestamptz)
RETURNS timestamptz LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    review phases%ROWTYPE;
    results phases%ROWTYPE;
BEGIN
    PERFORM 1 FROM editions WHERE id = p_edition_id FOR UPDATE;
    SELECT * INTO review FROM phases WHERE edition_id = p_edition_id AND name = 'expert_review';
    SELECT * INTO results FROM phases WHERE edition_id = p_edition_id AND name = 'results';
    IF review.edition_id IS NULL OR results.edition_id IS NULL THEN
        RAISE EXCEPTION 'edition % has no expert review and results phases', p_edition_id
            USING ERRCODE = 'no_data_found';
    END IF;
    IF EXISTS (SELECT 1 FROM publications WHERE edition_id = p_edition_id) THEN
        RAISE EXCEPTION 'the results are published: the expert review cannot move'
            USING ERRCODE = 'check_violation';
    END IF;
    IF p_new_close IS NULL OR p_new_close <= review.closes_at THEN
        RAISE EXCEPTION 'the expert review close only moves later (it is %)', review.closes_at
            USING ERRCODE = 'check_violation';
    END IF;
    IF p_new_close >= results.closes_at THEN
        RAISE EXCEPTION 'the new close would swallow the whole results phase'
            USING ERRCODE = 'check_violation';
    END IF;
    UPDATE phases SET closes_at = p_new_close
        WHERE edition_id = p_edition_id AND name = 'expert_review';
    UPDATE phases SET opens_at = p_new_close
        WHERE edition_id = p_edition_id AND name = 'results' AND opens_at < p_new_close;
    RETURN review.closes_at;
END;
$$;

-- An organizer invites an expert or a committee member: the account is created or given
-- the role, and its sessions end when the role is new (as `voting users add` does). The
-- organizer role itself stays the owner's to grant (`voting users add`). Returns the
-- account's id.
CREATE FUNCTION grant_staff_role(p_email text, p_role text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    found_id bigint;
BEGIN
    IF p_role IS NULL OR p_role NOT IN ('expert', 'committee') THEN
        RAISE EXCEPTION 'only the expert and committee roles are granted here, not %', p_role
            USING ERRCODE = 'check_violation';
    END IF;
    IF p_email IS NULL OR p_email = '' OR p_email <> lower(p_email) OR position('@' in p_email) < 2
    THEN
        RAISE EXCEPTION 'not a normalized email address: %', p_email
            USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO users (email, roles) VALUES (p_email, ARRAY[p_role])
    ON CONFLICT (email) DO UPDATE SET
        roles = (SELECT array_agg(DISTINCT r ORDER BY r) FROM unnest(users.roles || ARRAY[p_role]) AS r),
        session_generation = users.session_generation
            + CASE WHEN p_role = ANY (users.roles) THEN 0 ELSE 1 END
    RETURNING id INTO found_id;
    RETURN found_id;
END;
$$;

REVOKE EXECUTE ON FUNCTION extend_expert_review_close(integer, timestamptz),
    grant_staff_role(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION extend_expert_review_close(integer, timestamptz),
    grant_staff_role(text, text) TO wsis_app;
