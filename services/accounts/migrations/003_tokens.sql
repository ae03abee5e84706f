-- Issue 16 (SEC-9): a personal API token ends when its operator's password is changed or
-- reset, unless it was made to survive that. Tokens made before this default to ending
-- too (the safe side).
ALTER TABLE sessions
    ADD COLUMN survives_password_change boolean NOT NULL DEFAULT false;
