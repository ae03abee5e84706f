-- composition (issue 6): templates and phrases in folders, signatures, the tenant's check
-- words, drafts with their revisions and attachments.

CREATE TABLE folders (
    tenant_id   uuid NOT NULL,
    id          uuid PRIMARY KEY,
    parent_id   uuid REFERENCES folders(id),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
-- one name per parent (the top level too)
CREATE UNIQUE INDEX folders_name ON folders (
    tenant_id, coalesce(parent_id, '00000000-0000-0000-0000-000000000000'), lower(name)
);

CREATE TABLE templates (
    tenant_id        uuid NOT NULL,
    id               uuid PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('template', 'phrase')),
    folder_id        uuid REFERENCES folders(id),
    name             text NOT NULL,
    subject          text NOT NULL DEFAULT '',
    body_text        text NOT NULL DEFAULT '',
    body_html        text NOT NULL DEFAULT '',
    keywords         text[] NOT NULL DEFAULT '{}',
    inbox_ids        uuid[] NOT NULL DEFAULT '{}',   -- empty: every inbox
    search_text      text NOT NULL DEFAULT '',       -- normalised, for list queries
    version          integer NOT NULL DEFAULT 1,
    usage_count      bigint NOT NULL DEFAULT 0,
    updated_by       uuid,
    updated_by_name  text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    deleted_at       timestamptz
);
CREATE INDEX templates_tenant ON templates (tenant_id, kind, lower(name)) WHERE deleted_at IS NULL;

CREATE TABLE signatures (
    tenant_id   uuid NOT NULL,
    id          uuid PRIMARY KEY,
    inbox_id    uuid,                              -- NULL: the tenant's default
    name        text NOT NULL,
    body_text   text NOT NULL,
    body_html   text NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL
);
CREATE UNIQUE INDEX signatures_inbox ON signatures (
    tenant_id, coalesce(inbox_id, '00000000-0000-0000-0000-000000000000')
);

CREATE TABLE compose_settings (
    tenant_id         uuid PRIMARY KEY,
    attachment_words  text[] NOT NULL,
    error_keywords    text[] NOT NULL,
    updated_at        timestamptz NOT NULL
);

CREATE TABLE drafts (
    tenant_id             uuid NOT NULL,
    id                    uuid PRIMARY KEY,
    ticket_id             uuid,                    -- NULL: a new mail from an inbox alone
    inbox_id              uuid NOT NULL,
    kind                  text NOT NULL CHECK (kind IN ('reply', 'reply_all', 'forward', 'new')),
    answering_message_id  uuid,
    in_reply_to           text NOT NULL DEFAULT '',
    "references"          text[] NOT NULL DEFAULT '{}',
    author_id             uuid NOT NULL,
    author_name           text NOT NULL,
    state                 text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'discarded', 'sent')),
    revision              integer NOT NULL DEFAULT 0,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL
);
CREATE INDEX drafts_ticket ON drafts (tenant_id, ticket_id, updated_at DESC) WHERE state = 'open';

CREATE TABLE draft_revisions (
    tenant_id       uuid NOT NULL,
    draft_id        uuid NOT NULL REFERENCES drafts(id),
    revision        integer NOT NULL,
    saved_at        timestamptz NOT NULL,
    saved_by        uuid NOT NULL,
    saved_by_name   text NOT NULL,
    fence           bigint,
    from_address    text NOT NULL,
    from_name       text NOT NULL DEFAULT '',
    to_addrs        text[] NOT NULL DEFAULT '{}',
    cc_addrs        text[] NOT NULL DEFAULT '{}',
    bcc_addrs       text[] NOT NULL DEFAULT '{}',
    subject         text NOT NULL DEFAULT '',
    body_text       text NOT NULL DEFAULT '',
    body_html       text NOT NULL DEFAULT '',
    signature_text  text NOT NULL DEFAULT '',
    quote_text      text NOT NULL DEFAULT '',
    include_quote   boolean NOT NULL DEFAULT false,
    attachment_ids  uuid[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (draft_id, revision)
);

-- Attachment bytes, once per content (SHA-256); PostgreSQL compresses what it can.
CREATE TABLE blobs (
    sha256  bytea PRIMARY KEY,
    size    bigint NOT NULL,
    data    bytea NOT NULL
);

CREATE TABLE draft_attachments (
    tenant_id     uuid NOT NULL,
    id            uuid PRIMARY KEY,
    draft_id      uuid NOT NULL REFERENCES drafts(id),
    sha256        bytea NOT NULL REFERENCES blobs(sha256),
    filename      text NOT NULL,
    content_type  text NOT NULL,
    size          bigint NOT NULL,
    inline        boolean NOT NULL DEFAULT false,
    content_id    text NOT NULL DEFAULT '',
    source        text NOT NULL DEFAULT 'upload',
    created_at    timestamptz NOT NULL
);
CREATE INDEX draft_attachments_draft ON draft_attachments (tenant_id, draft_id);
