-- Tickets routing never saw (issue 18): the tenants whose open and pending tickets routing
-- has read once from tickets into assign_tickets (assign_backfill.py).
CREATE TABLE assign_backfills (
    tenant_id  uuid PRIMARY KEY,
    done_at    timestamptz NOT NULL,
    tickets    integer NOT NULL      -- how many it read
);
