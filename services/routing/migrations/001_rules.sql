-- routing rules (issue 18, RTE-1): per tenant and per inbox, one explicit order per
-- tenant, versioned (every saved version kept), and which "once per ticket" rules ran.

CREATE TABLE rules (
    tenant_id    uuid NOT NULL,
    id           uuid PRIMARY KEY,
    inbox_id     uuid,                      -- NULL: every inbox of the tenant
    position     integer NOT NULL,          -- 0 first; dense per tenant
    version      integer NOT NULL DEFAULT 1,
    body         jsonb NOT NULL,            -- the definition (services/routing/rules/validate.py)
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    updated_by   uuid
);
CREATE INDEX rules_tenant ON rules (tenant_id, position);

-- every saved version, the current one included; kept after the rule is deleted
CREATE TABLE rule_versions (
    tenant_id    uuid NOT NULL,
    rule_id      uuid NOT NULL,
    version      integer NOT NULL,
    body         jsonb NOT NULL,
    position     integer NOT NULL,
    saved_at     timestamptz NOT NULL,
    saved_by     uuid,
    deleted      boolean NOT NULL DEFAULT false,  -- the version the rule had when deleted
    PRIMARY KEY (tenant_id, rule_id, version, deleted)
);

-- bumped by every change of a tenant's rules: replicas compare it to refresh their cache
CREATE TABLE rule_revisions (
    tenant_id    uuid PRIMARY KEY,
    revision     bigint NOT NULL
);

-- the "once per ticket" rules that ran on a ticket
CREATE TABLE rule_runs (
    tenant_id    uuid NOT NULL,
    ticket_id    uuid NOT NULL,
    rule_id      uuid NOT NULL,
    ran_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, ticket_id, rule_id)
);
