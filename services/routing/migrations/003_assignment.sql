-- Assignment (issue 18, RTE-2): presence, routing profiles, inbox strategies, and what
-- routing knows of tickets (from tickets' events) with the operators' load counters.

-- An operator's presence as they set it; `online` lapses at expires_at (heartbeat).
CREATE TABLE assign_presence (
    tenant_id    uuid NOT NULL,
    operator_id  uuid NOT NULL,
    status       text NOT NULL CHECK (status IN ('online', 'away', 'offline')),
    expires_at   timestamptz,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, operator_id)
);

CREATE TABLE assign_profiles (
    tenant_id         uuid NOT NULL,
    operator_id       uuid NOT NULL,
    capacity          integer CHECK (capacity >= 0),          -- NULL: no limit
    channel_capacity  jsonb NOT NULL DEFAULT '{}',            -- {"mail": 3}
    skills            jsonb NOT NULL DEFAULT '[]',            -- [{"name", "level"}]
    languages         text[] NOT NULL DEFAULT '{}',
    updated_at        timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, operator_id)
);

CREATE TABLE assign_policies (
    tenant_id               uuid NOT NULL,
    inbox_id                uuid NOT NULL,
    strategy                text NOT NULL CHECK (strategy IN ('manual', 'round_robin', 'least_loaded')),
    capacity                integer CHECK (capacity >= 0),
    channel_capacity        jsonb NOT NULL DEFAULT '{}',
    tiers                   jsonb NOT NULL DEFAULT '[]',      -- [{"operator_ids", "widen_after_minutes"}]
    reassign_after_minutes  integer,
    max_new_per_hour        integer,
    rr_cursor               text,                             -- round robin: the last operator given one
    updated_at              timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, inbox_id)
);

-- Each ticket as its last event (or the assigner's own answer from tickets) showed it.
-- `version` is the ticket's updated_at: an older state arriving late changes nothing.
CREATE TABLE assign_tickets (
    tenant_id      uuid NOT NULL,
    ticket_id      uuid NOT NULL,
    inbox_id       uuid NOT NULL,
    channel        text NOT NULL,
    status         text NOT NULL,
    assignee_id    uuid,
    priority       integer NOT NULL DEFAULT 2,
    waiting_since  timestamptz NOT NULL,     -- since when it is open and unassigned
    version        timestamptz NOT NULL,
    by_strategy    boolean NOT NULL DEFAULT false,  -- its assignee was chosen by the assigner
    assigned_at    timestamptz,
    replied        boolean NOT NULL DEFAULT false,  -- we sent a mail on it
    excluded       uuid[] NOT NULL DEFAULT '{}',    -- operators it was taken back from
    handed         boolean NOT NULL DEFAULT false,  -- a rule handed it to the inbox's strategy
    PRIMARY KEY (tenant_id, ticket_id)
);
CREATE INDEX assign_tickets_waiting ON assign_tickets (tenant_id, inbox_id, waiting_since)
    WHERE assignee_id IS NULL AND status = 'open';
CREATE INDEX assign_tickets_unreplied ON assign_tickets (tenant_id, assigned_at)
    WHERE by_strategy AND NOT replied AND status = 'open';

-- Open + pending tickets per operator, inbox and channel: changed with the rows above.
CREATE TABLE assign_loads (
    tenant_id    uuid NOT NULL,
    operator_id  uuid NOT NULL,
    inbox_id     uuid NOT NULL,
    channel      text NOT NULL,
    tickets      integer NOT NULL CHECK (tickets >= 0),
    PRIMARY KEY (tenant_id, operator_id, inbox_id, channel)
);

-- What the assigner gave whom, when (fairness: at most K an hour).
CREATE TABLE assign_log (
    tenant_id    uuid NOT NULL,
    operator_id  uuid NOT NULL,
    ticket_id    uuid NOT NULL,
    inbox_id     uuid NOT NULL,
    at           timestamptz NOT NULL,
    strategy     text NOT NULL
);
CREATE INDEX assign_log_recent ON assign_log (tenant_id, operator_id, at);
