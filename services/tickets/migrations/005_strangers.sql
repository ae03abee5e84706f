-- ADR 0009: a mail that joined a ticket although its sender was not a participant (only
-- our signed Message-ID lets it) is a stranger's: shown as such, never the default
-- recipient of a reply, and its addresses make nobody a participant.
ALTER TABLE messages ADD COLUMN stranger boolean NOT NULL DEFAULT false;
