-- A new ticket's first SLA travels in message.routed, not sla.changed: the ticket's own
-- events carry routing's soonest due time (TicketSummary.sla_due_at). The live row keeps
-- both; `due_at` is the one of the newer source (rlive, issue 19).
ALTER TABLE live_tickets ADD COLUMN ticket_sla_due_at timestamptz;
ALTER TABLE live_tickets ADD COLUMN due_at timestamptz GENERATED ALWAYS AS (
    CASE WHEN sla_version IS NULL OR (version IS NOT NULL AND version > sla_version)
         THEN ticket_sla_due_at ELSE sla_due_at END
) STORED;
