-- Issue 21 (ING-6): channels other than mail — web chat widgets, API channels, LINE
-- channels — their conversations, the transcript of each, and the deliveries of replies to
-- an API channel's webhook or to LINE (retried with back-off, dead letters kept).
CREATE TABLE channels (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('chat', 'api', 'line')),
    inbox_id      uuid NOT NULL,
    name          text NOT NULL,
    -- unguessable key in public URLs (widget script/socket, API inbound, LINE webhook)
    public_key    text NOT NULL UNIQUE,
    settings      jsonb NOT NULL DEFAULT '{}',   -- ChatSettings / ApiSettings / LineSettings
    secret_enc    bytea,                         -- api: HMAC secret; line: channel secret
    token_enc     bytea,                         -- line: channel access token
    secret_hint   text NOT NULL DEFAULT '',
    enabled       boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    deleted_at    timestamptz
);
CREATE INDEX channels_tenant ON channels (tenant_id, kind) WHERE deleted_at IS NULL;

CREATE TABLE channel_conversations (
    id                      uuid PRIMARY KEY,
    tenant_id               uuid NOT NULL,
    channel_id              uuid NOT NULL REFERENCES channels (id),
    -- chat: the visitor's id; api: the caller's conversation id; line: the userId /
    -- groupId / roomId the messages come from
    external_id             text NOT NULL,
    sender_id               text NOT NULL DEFAULT '',
    sender_name             text NOT NULL DEFAULT '',
    email                   text NOT NULL DEFAULT '',   -- chat: where the transcript goes
    language                text NOT NULL DEFAULT '',
    ticket_id               uuid,
    last_inbound_at         timestamptz,
    reply_token             text,                       -- line: the latest unused reply token
    reply_token_expires_at  timestamptz,
    last_seq                bigint NOT NULL DEFAULT 0,
    ended_at                timestamptz,
    transcript_sent_at      timestamptz,
    created_at              timestamptz NOT NULL,
    UNIQUE (channel_id, external_id)
);
CREATE INDEX channel_conversations_ticket ON channel_conversations (tenant_id, ticket_id);

-- The transcript: every message of a conversation, both directions, numbered per
-- conversation (a reconnecting visitor asks for what follows the last seq it has).
CREATE TABLE channel_messages (
    conversation_id  uuid NOT NULL REFERENCES channel_conversations (id),
    seq              bigint NOT NULL,
    tenant_id        uuid NOT NULL,
    direction        text NOT NULL CHECK (direction IN ('in', 'out')),
    key              text NOT NULL,          -- in: the sender's idempotency key; out: send id
    text             text NOT NULL DEFAULT '',
    attachments      jsonb NOT NULL DEFAULT '[]',   -- [{name, content_type, size}]
    author_name      text NOT NULL DEFAULT '',
    message_id       uuid,                   -- in: ingestion's stored message
    created_at       timestamptz NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    UNIQUE (conversation_id, direction, key)
);
CREATE INDEX channel_messages_message ON channel_messages (message_id) WHERE message_id IS NOT NULL;

CREATE TABLE channel_deliveries (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL,
    channel_id       uuid NOT NULL REFERENCES channels (id),
    conversation_id  uuid NOT NULL REFERENCES channel_conversations (id),
    seq              bigint NOT NULL,
    send_id          text NOT NULL,
    ticket_id        uuid,
    state            text NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    lease_until      timestamptz,
    last_error       text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL,
    delivered_at     timestamptz,
    UNIQUE (tenant_id, send_id)
);
CREATE INDEX channel_deliveries_due ON channel_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX channel_deliveries_state ON channel_deliveries (tenant_id, state, created_at DESC);
