-- Every mail exactly as it arrived. The raw bytes are kept even when parsing fails.
-- (tenant_id, sha256) dedupes: the same bytes delivered twice to one tenant (a sender's
-- retry after a 451, a replayed import) are one message and one event.
CREATE TABLE raw_messages (
    id                   uuid PRIMARY KEY,
    tenant_id            uuid NOT NULL,
    inbox_id             uuid NOT NULL,
    inbox_name           text NOT NULL,
    channel              text NOT NULL,
    sha256               bytea NOT NULL,
    size_bytes           integer NOT NULL,
    raw                  bytea NOT NULL,
    envelope_from        text NOT NULL DEFAULT '',
    envelope_recipients  text[] NOT NULL DEFAULT '{}',
    summary              bytea NOT NULL,      -- switchboard.v1.MailSummary
    parse_problems       text[] NOT NULL DEFAULT '{}',
    event_id             uuid NOT NULL,       -- its message.received event
    received_at          timestamptz NOT NULL,
    UNIQUE (tenant_id, sha256)
);
CREATE INDEX raw_messages_tenant_received ON raw_messages (tenant_id, received_at DESC);
