ALTER TABLE users ADD COLUMN session_generation integer NOT NULL DEFAULT 0;
