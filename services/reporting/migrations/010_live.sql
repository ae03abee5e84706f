-- The live figures (issue 19, rlive: RPT-5, RPT-7): reporting's own row of every ticket,
-- kept from tickets' events (consumer reporting__live) and routing's SLA events
-- (reporting__live_sla). Never read from another service's tables.

CREATE TABLE live_tickets (
    tenant_id        uuid NOT NULL,
    ticket_id        uuid NOT NULL,
    inbox_id         uuid,                 -- NULL until a ticket event came (an SLA event first)
    status           text NOT NULL DEFAULT '',  -- open, pending, resolved, no_action, trash, merged
    assignee_id      uuid,
    version          timestamptz,          -- the ticket's updated_at the row holds
    answered_at      timestamptz,          -- our latest reply, or the latest closing
    waiting_since    timestamptz,          -- the oldest customer message after answered_at
    sla_state        text NOT NULL DEFAULT '',
    sla_due_at       timestamptz,          -- the soonest due time of a running clock
    sla_version      timestamptz,          -- occurred_at of the sla.changed held
    warned_due_at    timestamptz,          -- the due time the latest sla.warning was for
    warned_version   timestamptz,
    PRIMARY KEY (tenant_id, ticket_id)
);
CREATE INDEX live_tickets_active ON live_tickets (tenant_id, inbox_id)
    WHERE status IN ('open', 'pending');

-- The customer messages of a ticket not yet answered (older ones are deleted when a
-- reply or a closing comes): the wait starts at the oldest.
CREATE TABLE live_customer_messages (
    tenant_id   uuid NOT NULL,
    ticket_id   uuid NOT NULL,
    at          timestamptz NOT NULL,
    message_id  text NOT NULL,
    PRIMARY KEY (tenant_id, ticket_id, message_id)
);
