CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    slug        text NOT NULL UNIQUE,
    name        text NOT NULL,
    time_zone   text NOT NULL DEFAULT 'UTC',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE operators (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants(id),
    login          text NOT NULL,
    display_name   text NOT NULL,
    password_hash  text NOT NULL,          -- argon2id, never returned, never logged
    roles          text[] NOT NULL DEFAULT '{}',
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now()
);
-- Logins are unique across tenants: a login names one operator of one tenant.
CREATE UNIQUE INDEX operators_login ON operators (lower(login));
CREATE INDEX operators_tenant ON operators (tenant_id);

CREATE TABLE inboxes (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

-- An address belongs to exactly one inbox of one tenant (stored lower case).
CREATE TABLE inbox_addresses (
    address     text PRIMARY KEY CHECK (address = lower(address)),
    tenant_id   uuid NOT NULL REFERENCES tenants(id),
    inbox_id    uuid NOT NULL REFERENCES inboxes(id)
);
CREATE INDEX inbox_addresses_inbox ON inbox_addresses (tenant_id, inbox_id);

-- Sessions are stored by the SHA-256 of their token: a database leak yields no tokens.
CREATE TABLE sessions (
    token_hash      bytea PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    operator_id     uuid NOT NULL REFERENCES operators(id),
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    client_address  text NOT NULL DEFAULT '',
    user_agent      text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_operator ON sessions (tenant_id, operator_id);

CREATE TABLE login_history (
    id              uuid PRIMARY KEY,
    tenant_id       uuid,                  -- null when the login named nobody
    operator_id     uuid,
    login           text NOT NULL,
    success         boolean NOT NULL,
    client_address  text NOT NULL DEFAULT '',
    user_agent      text NOT NULL DEFAULT '',
    at              timestamptz NOT NULL
);
CREATE INDEX login_history_operator ON login_history (tenant_id, operator_id, at DESC);
