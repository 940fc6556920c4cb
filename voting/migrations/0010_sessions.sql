-- Staff sessions can be revoked. A session cookie names its account's session
-- generation at sign-in; a request whose cookie names another generation is signed out.
-- Sign-out, "sign out everywhere" and any change of the account's roles add one, so no
-- copy of an earlier cookie opens the account again.
ALTER TABLE users ADD COLUMN session_generation integer NOT NULL DEFAULT 0;
