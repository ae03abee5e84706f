-- outbound (issue 7): the outbox (every mail to send, now or scheduled, with its exact
-- bytes and its SMTP history), SMTP routes, DKIM keys, automatic-reply settings and the
-- record of who was auto-replied when.

CREATE TABLE smtp_routes (
    tenant_id          uuid NOT NULL,
    id                 uuid PRIMARY KEY,
    name               text NOT NULL,
    scope              text NOT NULL CHECK (scope IN ('inbox', 'domain', 'default')),
    inbox_id           uuid,
    domain             text,
    host               text NOT NULL,
    port               integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    security           text NOT NULL CHECK (security IN ('tls', 'starttls', 'none')),
    username           text NOT NULL DEFAULT '',
    password_sealed    bytea,                 -- AES-GCM, bound to the route id
    verify_certificate boolean NOT NULL DEFAULT true,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    CHECK ((scope = 'inbox') = (inbox_id IS NOT NULL)),
    CHECK ((scope = 'domain') = (domain IS NOT NULL))
);
CREATE UNIQUE INDEX smtp_routes_target ON smtp_routes (
    tenant_id, scope, coalesce(inbox_id::text, ''), coalesce(domain, '')
);

CREATE TABLE dkim_keys (
    tenant_id          uuid NOT NULL,
    domain             text NOT NULL,
    selector           text NOT NULL,
    private_key_sealed bytea NOT NULL,        -- PEM, AES-GCM, bound to tenant:domain
    public_key_b64     text NOT NULL,
    created_at         timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, domain)
);

CREATE TABLE sends (
    tenant_id        uuid NOT NULL,
    id               uuid PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('reply', 'auto_reply', 'form_confirmation')),
    draft_id         uuid,
    draft_revision   integer NOT NULL DEFAULT 0,
    ticket_id        uuid,
    inbox_id         uuid NOT NULL,
    operator_id      uuid,
    operator_name    text NOT NULL DEFAULT '',
    -- the submitting operator's identity (gRPC metadata), to finish as them: the ticket's
    -- status, the reply lock's release
    operator_md      jsonb NOT NULL DEFAULT '[]',
    fence            bigint NOT NULL DEFAULT 0,
    lock_held        boolean NOT NULL DEFAULT false,  -- released once the first attempt ends
    status_after     integer NOT NULL DEFAULT 0,
    state            text NOT NULL CHECK (state IN ('scheduled', 'sending', 'retrying', 'sent',
                     'failed', 'unknown', 'cancelled', 'bounced')),
    -- while sending: connecting (nothing handed over yet) or data (the message is being
    -- or has been transmitted: a lost lease there means "unknown", never a resend)
    phase            text NOT NULL DEFAULT 'queued' CHECK (phase IN ('queued', 'connecting', 'data')),
    message_id       text NOT NULL,
    subject          text NOT NULL DEFAULT '',
    envelope_from    text NOT NULL,
    recipients       text[] NOT NULL,
    rejected         text[] NOT NULL DEFAULT '{}',
    raw              bytea NOT NULL,
    dkim_signed      boolean NOT NULL DEFAULT false,
    send_at          timestamptz NOT NULL,
    next_attempt_at  timestamptz NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL,
    lease_owner      text,
    lease_until      timestamptz,
    route_name       text NOT NULL DEFAULT '',
    last_code        integer,
    last_message     text NOT NULL DEFAULT '',
    bounce           text NOT NULL DEFAULT '',
    sent_at          timestamptz,
    -- after sending: recorded in the ticket, the draft marked sent, the status set, the
    -- lock released. NULL while there is something left to do.
    finished_at      timestamptz,
    finish_error     text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
-- what the dispatcher claims: due items, oldest first
CREATE INDEX sends_due ON sends (next_attempt_at) WHERE state IN ('scheduled', 'retrying');
-- leases to sweep
CREATE INDEX sends_leased ON sends (lease_until) WHERE state = 'sending';
CREATE INDEX sends_unfinished ON sends (updated_at)
    WHERE (finished_at IS NULL AND state IN ('sent', 'failed', 'unknown'))
       OR (lock_held AND state = 'retrying');
CREATE INDEX sends_ticket ON sends (tenant_id, ticket_id, created_at DESC);
CREATE INDEX sends_tenant ON sends (tenant_id, created_at DESC, id DESC);
CREATE INDEX sends_message ON sends (tenant_id, message_id);
-- one live item per draft revision: a double-click or a retried request submits once
CREATE UNIQUE INDEX sends_draft_live ON sends (tenant_id, draft_id, draft_revision)
    WHERE draft_id IS NOT NULL AND state NOT IN ('cancelled');

CREATE TABLE send_attempts (
    send_id     uuid NOT NULL REFERENCES sends(id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    at          timestamptz NOT NULL,
    outcome     text NOT NULL,    -- sent, temporary, permanent, unknown
    code        integer,
    message     text NOT NULL DEFAULT '',
    worker      text NOT NULL DEFAULT '',
    PRIMARY KEY (send_id, attempt)
);

CREATE TABLE auto_reply_settings (
    tenant_id         uuid NOT NULL,
    inbox_id          uuid NOT NULL,
    enabled           boolean NOT NULL DEFAULT false,
    mode              text NOT NULL DEFAULT 'outside_hours' CHECK (mode IN ('always', 'outside_hours')),
    hours             jsonb NOT NULL DEFAULT '[]',
    time_zone         text NOT NULL DEFAULT 'UTC',
    template_id       uuid,
    period_hours      integer NOT NULL DEFAULT 24,
    form_template_id  uuid,
    updated_at        timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, inbox_id)
);

-- at most one automatic reply per sender and inbox in the period
CREATE TABLE auto_reply_log (
    tenant_id   uuid NOT NULL,
    inbox_id    uuid NOT NULL,
    address     text NOT NULL,    -- lower-cased
    sent_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, inbox_id, address)
);
