-- The application's database role, wsis_app. The engine's processes log in as a LOGIN
-- role that is a member of it (README.md, "Database roles"); migrations run as the role
-- that owns the tables. wsis_app reads and writes the contest's data, but it owns no
-- table, so it can neither DROP nor ALTER one (nor switch the audit log's triggers off),
-- and it may only add to the audit log and to the vote ledger.
--
-- Roles belong to the whole server, not to one database: the role may exist already
-- (another database of this server, or a DBA who made it first because the migrating
-- role may not create roles). Two migrations racing to create it are fine too.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wsis_app') THEN
        CREATE ROLE wsis_app NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO wsis_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO wsis_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO wsis_app;

-- Append-only, for the application as for everyone: the triggers of 0001 refuse UPDATE,
-- DELETE and TRUNCATE to any role, and the application cannot even try.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM wsis_app;
-- A vote is never deleted (quarantined, released or voided instead, on the record).
REVOKE DELETE, TRUNCATE ON votes FROM wsis_app;
-- Only a migration records a migration.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON schema_migrations FROM wsis_app;

-- Tables and sequences later migrations create (as this same owner) get the same grants.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO wsis_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO wsis_app;
