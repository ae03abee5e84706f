-- rule webhooks (issue 18, action `webhook`): each tenant's signing secret, and the
-- deliveries — an outbox: a row is written once per (cause event, webhook action), tried
-- until a 2xx answer, with backoff, and dead after the last attempt (kept, retried by hand).

CREATE TABLE webhook_secrets (
    tenant_id    uuid PRIMARY KEY,
    secret       text NOT NULL,             -- never logged, never answered after creation
    created_at   timestamptz NOT NULL
);

CREATE TABLE webhook_deliveries (
    tenant_id        uuid NOT NULL,
    id               uuid PRIMARY KEY,
    cause_event_id   uuid NOT NULL,         -- the ticket.rule_actions event
    position         integer NOT NULL,      -- the webhook's place in that event
    rule_id          uuid NOT NULL,
    rule_name        text NOT NULL,
    url              text NOT NULL,
    trigger          text NOT NULL,
    ticket_id        uuid NOT NULL,
    ticket_number    bigint NOT NULL,
    body             text NOT NULL,         -- the JSON payload, fixed when written
    state            text NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,           -- due (pending only)
    leased_until     timestamptz,           -- claimed by a replica's deliverer until then
    last_error       text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL,
    delivered_at     timestamptz,
    UNIQUE (tenant_id, cause_event_id, position)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_list ON webhook_deliveries (tenant_id, state, created_at DESC);
