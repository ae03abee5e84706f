-- Issue 4: the whole ticket model — numbers, fields, contacts, comments, phone memos,
-- audit trail, search, per-inbox settings, reply-lock state and the fencing sequence.

-- Ticket numbers per tenant (1, 2, 3 …), handed out under a row lock.
CREATE TABLE tenant_counters (
    tenant_id    uuid PRIMARY KEY,
    next_number  bigint NOT NULL
);

CREATE TABLE contacts (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    name         text NOT NULL DEFAULT '',
    phones       text[] NOT NULL DEFAULT '{}',
    company      text NOT NULL DEFAULT '',
    memo         text NOT NULL DEFAULT '',
    custom       jsonb NOT NULL DEFAULT '{}',
    merged_into  uuid REFERENCES contacts(id),
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX contacts_tenant ON contacts (tenant_id, updated_at DESC, id DESC);

-- An address names one contact of a tenant (stored lower case).
CREATE TABLE contact_addresses (
    tenant_id   uuid NOT NULL,
    address     text NOT NULL CHECK (address = lower(address)),
    contact_id  uuid NOT NULL REFERENCES contacts(id),
    PRIMARY KEY (tenant_id, address)
);
CREATE INDEX contact_addresses_contact ON contact_addresses (tenant_id, contact_id);

ALTER TABLE tickets
    ADD COLUMN number               bigint,
    ADD COLUMN contact_id           uuid REFERENCES contacts(id),
    ADD COLUMN labels               text[] NOT NULL DEFAULT '{}',
    ADD COLUMN category             text NOT NULL DEFAULT '',
    ADD COLUMN priority             text NOT NULL DEFAULT 'normal'
        CHECK (priority IN ('low','normal','high','urgent')),
    ADD COLUMN flags                text[] NOT NULL DEFAULT '{}',
    ADD COLUMN status_before_trash  text,
    ADD COLUMN closed_at            timestamptz,     -- when it last became resolved / no action
    ADD COLUMN merged_into          uuid REFERENCES tickets(id),
    ADD COLUMN last_message_at      timestamptz,
    ADD COLUMN message_count        integer NOT NULL DEFAULT 0,
    ADD COLUMN draft_count          integer NOT NULL DEFAULT 0,   -- kept by composition's events
    ADD COLUMN awaiting_approval    boolean NOT NULL DEFAULT false,  -- kept by approval's events
    -- The current reply lock as last granted (Redis holds the mutex; this is what lists
    -- show and what the expiry sweep compares against).
    ADD COLUMN lock_fence           bigint,
    ADD COLUMN lock_holder_id       uuid,
    ADD COLUMN lock_holder_name     text,
    ADD COLUMN lock_acquired_at     timestamptz,
    ADD COLUMN lock_expires_at      timestamptz;

UPDATE tickets SET last_message_at = received_at,
    message_count = (SELECT count(*) FROM messages m WHERE m.tenant_id = tickets.tenant_id
                     AND m.ticket_id = tickets.id);
WITH numbered AS (
    SELECT id, row_number() OVER (PARTITION BY tenant_id ORDER BY received_at, id) AS n
    FROM tickets
)
UPDATE tickets SET number = numbered.n FROM numbered WHERE numbered.id = tickets.id;
INSERT INTO tenant_counters (tenant_id, next_number)
    SELECT tenant_id, max(number) + 1 FROM tickets GROUP BY tenant_id;
ALTER TABLE tickets ALTER COLUMN number SET NOT NULL;
CREATE UNIQUE INDEX tickets_number ON tickets (tenant_id, number);
CREATE INDEX tickets_contact ON tickets (tenant_id, contact_id, received_at DESC);
CREATE INDEX tickets_labels ON tickets USING gin (labels);
CREATE INDEX tickets_lock_expiry ON tickets (lock_expires_at) WHERE lock_expires_at IS NOT NULL;
CREATE INDEX tickets_updated ON tickets (tenant_id, updated_at DESC, id DESC);

-- Fencing numbers for reply locks: a sequence never goes backwards, across failovers of
-- Redis and restarts of every process (no CACHE: numbers come out in grant order).
CREATE SEQUENCE reply_lock_fence NO CYCLE;

-- Messages: mail (summary set) and phone memos (memo_* set), one timeline.
ALTER TABLE messages
    ALTER COLUMN summary DROP NOT NULL,
    ADD COLUMN memo_body        text,
    ADD COLUMN memo_direction   text CHECK (memo_direction IN ('inbound','outbound')),
    ADD COLUMN memo_caller_name text,
    ADD COLUMN memo_phone       text,
    ADD COLUMN memo_duration_s  integer,
    ADD COLUMN author_id        uuid,
    ADD COLUMN author_name      text,
    -- the participants of the mail (from, to, cc), lower case: the subject-tag rule only
    -- trusts a tag from someone already in the ticket
    ADD COLUMN participants     text[] NOT NULL DEFAULT '{}',
    -- TKT-10: NFKC + case-folded subject and text, and its character uni- and bigrams
    ADD COLUMN search_text      text NOT NULL DEFAULT '',
    ADD COLUMN search_grams     text[] NOT NULL DEFAULT '{}';
CREATE INDEX messages_rfc822 ON messages (tenant_id, rfc822_message_id)
    WHERE rfc822_message_id <> '';
CREATE INDEX messages_grams ON messages USING gin (search_grams);

CREATE TABLE comments (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    ticket_id    uuid NOT NULL REFERENCES tickets(id),
    author_id    uuid NOT NULL,
    author_name  text NOT NULL,
    body         text NOT NULL,
    mentions     jsonb NOT NULL DEFAULT '[]',   -- [{"id","display_name"}]
    created_at   timestamptz NOT NULL
);
CREATE INDEX comments_ticket ON comments (tenant_id, ticket_id, created_at);

CREATE TABLE audit (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    ticket_id   uuid NOT NULL,
    at          timestamptz NOT NULL,
    actor_kind  text NOT NULL,      -- "operator", "system", "customer"
    actor_id    text NOT NULL,
    actor_name  text NOT NULL,
    action      text NOT NULL,
    changes     jsonb NOT NULL DEFAULT '[]',   -- [{"field","old","new"}]
    comment     text NOT NULL DEFAULT ''
);
CREATE INDEX audit_ticket ON audit (tenant_id, ticket_id, at DESC, id DESC);

CREATE TABLE inbox_settings (
    tenant_id              uuid NOT NULL,
    inbox_id               uuid NOT NULL,
    thresholds             jsonb NOT NULL DEFAULT '[]',  -- [{"after_minutes","color"}]
    new_ticket_after_days  integer NOT NULL DEFAULT 0,
    updated_at             timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, inbox_id)
);
