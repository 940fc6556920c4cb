-- Published results and the committee's signatures stay as written, for the application
-- too. 0006 granted wsis_app DELETE and TRUNCATE on every table of 0005, these included;
-- the triggers of 0005 refuse UPDATE of a publication, but not its removal. A publication
-- still goes with its edition (ON DELETE CASCADE runs with the table owner's rights), so
-- dropping a rehearsal or a simulator's edition works as before.
REVOKE UPDATE, DELETE, TRUNCATE ON publications, publication_leaves, publication_levels
    FROM wsis_app;
REVOKE UPDATE, DELETE, TRUNCATE ON result_signoffs FROM wsis_app;
