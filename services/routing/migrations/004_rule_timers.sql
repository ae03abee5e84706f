-- routing, rule time triggers (issue 18): no_first_reply and pending_until share the SLA's
-- due-time index (sla_timers / sla_fired) with targets 'no_first_reply' (which = the
-- rules' minutes, started_at = the ticket's creation) and 'pending_until' (which = 'at',
-- started_at = the date), so one claim loop fires them all, each once.
ALTER TABLE sla_tickets ADD COLUMN pending_until timestamptz;
