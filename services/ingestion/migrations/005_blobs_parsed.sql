-- Content-addressed storage (ING-3/ING-4): a raw mail or an attachment is kept once per
-- distinct content, whoever sent it; PostgreSQL compresses it (TOAST). Rows that use a
-- blob are always read through their tenant-scoped owner (raw_messages).
CREATE TABLE blobs (
    sha256      bytea PRIMARY KEY,
    size_bytes  bigint NOT NULL,
    data        bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A mail is stored first (state 'stored': bytes kept, not yet parsed), then parsed off the
-- event loop and completed (state 'parsed': summary, parsed document, event queued) — two
-- transactions, so a mail whose parsing kills the process is still kept, and a sweeper
-- finishes it (after 3 attempts without parsing, flagged with the problem).
ALTER TABLE raw_messages ALTER COLUMN raw DROP NOT NULL;
ALTER TABLE raw_messages ALTER COLUMN summary DROP NOT NULL;
ALTER TABLE raw_messages ADD COLUMN state text NOT NULL DEFAULT 'parsed'
    CHECK (state IN ('stored', 'parsed'));
ALTER TABLE raw_messages ADD COLUMN parsed jsonb;
ALTER TABLE raw_messages ADD COLUMN parse_attempts integer NOT NULL DEFAULT 0;
CREATE INDEX raw_messages_unparsed ON raw_messages (received_at) WHERE state = 'stored';
