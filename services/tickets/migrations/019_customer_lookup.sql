-- Issue 21 (DAT-3, RTE-3): customer data from the tenant's own system. One lookup
-- configuration per tenant (the header secret sealed with SB_SECRET_KEY, bound to the
-- tenant id) and the answers cached per contact, in the database so every replica shares
-- them. docs/lookup.md.

CREATE TABLE customer_lookups (
    tenant_id      uuid PRIMARY KEY,
    enabled        boolean NOT NULL DEFAULT true,
    url_template   text    NOT NULL,
    header_name    text    NOT NULL DEFAULT '',
    header_secret  bytea,                       -- SecretBox.seal(secret, tenant_id)
    secret_hint    text    NOT NULL DEFAULT '',
    timeout_ms     integer NOT NULL DEFAULT 3000 CHECK (timeout_ms BETWEEN 100 AND 10000),
    cache_ttl_s    integer NOT NULL DEFAULT 300 CHECK (cache_ttl_s BETWEEN 0 AND 86400),
    fields         jsonb   NOT NULL DEFAULT '[]',  -- [{pointer, label_ja, label_en, type}]
    value_pointer  text    NOT NULL DEFAULT '',
    allow_hosts    text[]  NOT NULL DEFAULT '{}',
    updated_at     timestamptz NOT NULL
);

-- A successful answer, mapped, per contact until expires_at (failures are not kept).
CREATE TABLE customer_lookup_cache (
    tenant_id   uuid NOT NULL,
    contact_id  uuid NOT NULL,
    fetched_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    http_status integer NOT NULL,
    elapsed_ms  integer NOT NULL,
    fields      jsonb   NOT NULL,              -- [{pointer, value, found}]
    customer_value bigint,
    PRIMARY KEY (tenant_id, contact_id)
);
