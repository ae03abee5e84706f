-- issue 18 (rule trigger pending_until): a pending ticket's pending-until date. Set with
-- UpdateTicket (only on a ticket pending after the change), cleared when it leaves
-- pending; carried in TicketSummary.pending_until so routing arms its timer.
ALTER TABLE tickets ADD COLUMN pending_until timestamptz;
