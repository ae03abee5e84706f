-- routing, SLA (issue 18, RTE-4): calendars, policies, each ticket's SLA facts and the
-- due-time index of warnings and breaches still owed.

CREATE TABLE sla_calendars (
    tenant_id        uuid NOT NULL,
    id               uuid PRIMARY KEY,
    name             text NOT NULL,
    time_zone        text NOT NULL,
    public_holidays  text NOT NULL DEFAULT '',   -- ISO country code, '' none
    slots            jsonb NOT NULL,             -- [{weekday, start, end, crosses_midnight}]
    holidays         jsonb NOT NULL,             -- [{date, name, yearly}]
    version          integer NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE UNIQUE INDEX sla_calendars_name ON sla_calendars (tenant_id, lower(name));

CREATE TABLE sla_policies (
    tenant_id               uuid NOT NULL,
    id                      uuid PRIMARY KEY,
    name                    text NOT NULL,
    position                integer NOT NULL,
    enabled                 boolean NOT NULL,
    inbox_ids               text[] NOT NULL,
    categories              text[] NOT NULL,
    priorities              text[] NOT NULL,
    calendar_id             uuid REFERENCES sla_calendars (id),   -- NULL: around the clock
    first_response_minutes  integer,
    next_response_minutes   integer,
    resolution_minutes      integer,
    pause_statuses          text[] NOT NULL,
    warn_before_minutes     integer,
    warn_at_percent         integer,
    version                 integer NOT NULL DEFAULT 1,
    created_at              timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL
);
CREATE UNIQUE INDEX sla_policies_name ON sla_policies (tenant_id, lower(name));
CREATE INDEX sla_policies_calendar ON sla_policies (calendar_id);

-- What routing knows of a ticket, from tickets' events, and its SLA as last computed.
CREATE TABLE sla_tickets (
    tenant_id           uuid NOT NULL,
    ticket_id           uuid NOT NULL,
    inbox_id            text NOT NULL DEFAULT '',
    category            text NOT NULL DEFAULT '',
    priority            text NOT NULL DEFAULT '',
    status              text NOT NULL,
    created_at          timestamptz NOT NULL,
    opened_by_operator  boolean NOT NULL DEFAULT false,
    policy_id           uuid,
    state               text NOT NULL DEFAULT 'none',
    next_due_at         timestamptz,
    PRIMARY KEY (tenant_id, ticket_id)
);

-- The ticket's history as the clocks need it: statuses, customer messages, replies.
CREATE TABLE sla_history (
    tenant_id   uuid NOT NULL,
    ticket_id   uuid NOT NULL,
    event_id    uuid NOT NULL,
    what        text NOT NULL,      -- 'status' | 'customer' | 'operator'
    at          timestamptz NOT NULL,
    status      text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, ticket_id, event_id, what)
);

-- The due-time index: the warnings and breaches a ticket still owes. Replaced whenever
-- the ticket's SLA is recomputed; claimed with FOR UPDATE SKIP LOCKED when due.
CREATE TABLE sla_timers (
    tenant_id   uuid NOT NULL,
    ticket_id   uuid NOT NULL,
    target      text NOT NULL,
    which       text NOT NULL,      -- 'warning' | 'breach'
    started_at  timestamptz NOT NULL,
    fire_at     timestamptz NOT NULL,
    due_at      timestamptz NOT NULL,   -- the clock's due time (a warning's too)
    PRIMARY KEY (tenant_id, ticket_id, target, which)
);
CREATE INDEX sla_timers_due ON sla_timers (fire_at);

-- Each warning and breach fires once per clock (a next-response clock per start).
CREATE TABLE sla_fired (
    tenant_id   uuid NOT NULL,
    ticket_id   uuid NOT NULL,
    target      text NOT NULL,
    which       text NOT NULL,
    started_at  timestamptz NOT NULL,
    fired_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, ticket_id, target, which, started_at)
);
