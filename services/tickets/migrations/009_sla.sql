-- issue 18 (RTE-4): the ticket's soonest SLA due time, kept from routing's sla.changed
-- (routing owns the SLA; this copy lets lists sort by it). NULL: nothing running.
ALTER TABLE tickets ADD COLUMN sla_due_at timestamptz;
-- the time of the sla.changed applied, so a late older one cannot overwrite a newer one
ALTER TABLE tickets ADD COLUMN sla_changed_at timestamptz;
-- `sort=sla_due_at`: tickets without a running SLA sort after every due time
CREATE INDEX tickets_sla_due ON tickets (
    tenant_id, (coalesce(sla_due_at, timestamptz '9999-12-31 00:00:00+00')), id
);
