-- Issue 5: roles and permissions, inbox membership, operator profiles, password rules,
-- IP allow-lists, API tokens and CSRF tokens on sessions, login locks.

-- Per tenant: password rules (SEC-3) and the tenant's IP allow-list (SEC-2).
ALTER TABLE tenants
    ADD COLUMN password_min_length   integer NOT NULL DEFAULT 10,
    ADD COLUMN password_min_classes  integer NOT NULL DEFAULT 1,   -- of lower, upper, digit, other
    ADD COLUMN password_max_age_days integer NOT NULL DEFAULT 0,   -- 0: passwords never expire
    ADD COLUMN ip_allowlist          text[]  NOT NULL DEFAULT '{}'; -- CIDRs; empty: anywhere

ALTER TABLE operators
    ADD COLUMN addresses            text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN language             text    NOT NULL DEFAULT 'ja',
    ADD COLUMN time_zone            text    NOT NULL DEFAULT '',    -- '': the tenant's
    ADD COLUMN skills               text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN capacity             integer NOT NULL DEFAULT 0,     -- open tickets; 0: no limit
    ADD COLUMN must_change_password boolean NOT NULL DEFAULT false, -- a temporary password
    ADD COLUMN password_changed_at  timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN ip_allowlist         text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN updated_at           timestamptz NOT NULL DEFAULT now();

-- Roles are per tenant and editable; an operator's `roles` name them.
CREATE TABLE roles (
    tenant_id    uuid NOT NULL REFERENCES tenants(id),
    name         text NOT NULL,
    description  text NOT NULL DEFAULT '',
    permissions  text[] NOT NULL DEFAULT '{}',
    builtin      boolean NOT NULL DEFAULT false,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);

-- SEC-5: an operator sees the inboxes they are a member of (or all, by permission).
CREATE TABLE inbox_members (
    tenant_id    uuid NOT NULL,
    inbox_id     uuid NOT NULL REFERENCES inboxes(id) ON DELETE CASCADE,
    operator_id  uuid NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
    PRIMARY KEY (inbox_id, operator_id)
);
CREATE INDEX inbox_members_operator ON inbox_members (tenant_id, operator_id);

-- Sessions (kind 'session', for the browser, with a CSRF token) and personal API tokens
-- (kind 'token', named, revocable). Both are kept by the SHA-256 of their secret.
ALTER TABLE sessions
    ADD COLUMN id            uuid,
    ADD COLUMN kind          text NOT NULL DEFAULT 'session' CHECK (kind IN ('session', 'token')),
    ADD COLUMN name          text NOT NULL DEFAULT '',
    ADD COLUMN csrf_hash     bytea,
    ADD COLUMN last_seen_at  timestamptz;
UPDATE sessions SET id = gen_random_uuid(), last_seen_at = created_at;
ALTER TABLE sessions ALTER COLUMN id SET NOT NULL;
CREATE UNIQUE INDEX sessions_id ON sessions (tenant_id, id);

-- Failed logins are counted from login_history; these find them fast.
CREATE INDEX login_history_login ON login_history (lower(login), at DESC);
CREATE INDEX login_history_client ON login_history (client_address, at DESC);
CREATE INDEX login_history_tenant ON login_history (tenant_id, at DESC);

-- A login, or a client address, locked after repeated failures (visible to admins).
CREATE TABLE login_locks (
    kind        text NOT NULL CHECK (kind IN ('login', 'address')),
    key         text NOT NULL,              -- the lower-cased login, or the client address
    tenant_id   uuid,                       -- the tenant of the login's operator, if any
    failures    integer NOT NULL,
    locked_at   timestamptz NOT NULL,
    until       timestamptz NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX login_locks_tenant ON login_locks (tenant_id, until DESC);

-- Every tenant that exists gets the built-in roles (the service also ensures them at
-- start, with their current permissions, for tenants created later), and every existing
-- operator becomes a member of every inbox of their tenant, so nobody loses access.
INSERT INTO inbox_members (tenant_id, inbox_id, operator_id)
SELECT o.tenant_id, i.id, o.id FROM operators o JOIN inboxes i ON i.tenant_id = o.tenant_id
ON CONFLICT DO NOTHING;

ALTER TABLE login_history ADD COLUMN result text NOT NULL DEFAULT '';

-- SEC-7: every state-changing action through the gateway (from sb.gateway.operation.*).
CREATE TABLE operation_log (
    id              uuid PRIMARY KEY,          -- the event id
    tenant_id       uuid NOT NULL,
    at              timestamptz NOT NULL,
    operator_id     uuid,
    operator_name   text NOT NULL DEFAULT '',
    action          text NOT NULL,
    method          text NOT NULL,
    path            text NOT NULL,
    target          text NOT NULL DEFAULT '',
    status          integer NOT NULL,
    client_address  text NOT NULL DEFAULT '',
    request_id      text NOT NULL DEFAULT ''
);
CREATE INDEX operation_log_tenant ON operation_log (tenant_id, at DESC, id DESC);
CREATE INDEX operation_log_operator ON operation_log (tenant_id, operator_id, at DESC);

-- SEC-8: notices shown after login during their display period, and the bulletin board.
CREATE TABLE notices (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    title        text NOT NULL,
    body         text NOT NULL,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    author_id    uuid NOT NULL,
    author_name  text NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    CHECK (ends_at > starts_at)
);
CREATE INDEX notices_tenant ON notices (tenant_id, starts_at DESC);

CREATE TABLE posts (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    title        text NOT NULL,
    body         text NOT NULL,
    author_id    uuid NOT NULL,
    author_name  text NOT NULL,
    created_at   timestamptz NOT NULL,
    deleted_at   timestamptz
);
CREATE INDEX posts_tenant ON posts (tenant_id, created_at DESC, id DESC);

CREATE TABLE post_comments (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    post_id      uuid NOT NULL REFERENCES posts(id),
    body         text NOT NULL,
    author_id    uuid NOT NULL,
    author_name  text NOT NULL,
    created_at   timestamptz NOT NULL
);
CREATE INDEX post_comments_post ON post_comments (tenant_id, post_id, created_at);
