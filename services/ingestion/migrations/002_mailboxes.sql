-- IMAP intake: one row per mailbox an inbox fetches from. The secret (password or OAuth2
-- bearer token) is AES-GCM encrypted with the service's key (SB_SECRET_KEY) and never
-- leaves the service in clear, not even through its API.
CREATE TABLE mailboxes (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL,
    inbox_id         uuid NOT NULL,
    inbox_name       text NOT NULL,
    host             text NOT NULL,
    port             integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    security         text NOT NULL CHECK (security IN ('tls', 'starttls', 'none')),
    username         text NOT NULL,
    auth             text NOT NULL CHECK (auth IN ('password', 'xoauth2')),
    secret           bytea NOT NULL,
    folder           text NOT NULL DEFAULT 'INBOX',
    after_fetch      text NOT NULL CHECK (after_fetch IN ('seen', 'move', 'delete')),
    move_to          text NOT NULL DEFAULT '',
    poll_interval_s  integer NOT NULL CHECK (poll_interval_s BETWEEN 5 AND 3600),
    enabled          boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX mailboxes_tenant ON mailboxes (tenant_id, inbox_id);

-- Where fetching stands: every UID up to last_uid (of this UIDVALIDITY) is stored and its
-- event acknowledged.
CREATE TABLE mailbox_checkpoints (
    mailbox_id   uuid PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
    uidvalidity  bigint NOT NULL,
    last_uid     bigint NOT NULL,
    updated_at   timestamptz NOT NULL
);

-- Which replica fetches a mailbox. A lease not renewed in time is taken over.
CREATE TABLE mailbox_leases (
    mailbox_id  uuid PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
    holder      text NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- What an operator sees of a mailbox's health.
CREATE TABLE mailbox_status (
    mailbox_id    uuid PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
    state         text NOT NULL,          -- connecting, idle, polling, fetching, error
    last_error    text NOT NULL DEFAULT '',
    last_ok_at    timestamptz,
    fetched       bigint NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL
);

-- Dedupe (TKT-1 prerequisite): one message per Message-ID per inbox, or per content hash
-- when the mail has no Message-ID; whichever channel it came by.
ALTER TABLE raw_messages ADD COLUMN dedupe_key text;
UPDATE raw_messages SET dedupe_key = 'sha:' || encode(sha256, 'hex');
ALTER TABLE raw_messages ALTER COLUMN dedupe_key SET NOT NULL;
ALTER TABLE raw_messages DROP CONSTRAINT raw_messages_tenant_id_sha256_key;
CREATE UNIQUE INDEX raw_messages_dedupe ON raw_messages (tenant_id, dedupe_key);
CREATE INDEX raw_messages_sha ON raw_messages (tenant_id, sha256);
