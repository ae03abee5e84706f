-- Issue 19 (§5, the scale data set): the ticket list's common filters read in order from
-- an index at a million tickets. "Assigned to me" had none (every ticket of the tenant was
-- read, newest first, to find an operator's 50); one inbox was read through the tenant's
-- list and filtered (a small inbox: most of the tenant read). query.py compares a single
-- inbox or status by equality so that these are used in order.
CREATE INDEX tickets_assignee_list ON tickets (tenant_id, assignee_id, received_at DESC, id DESC)
    WHERE assignee_id IS NOT NULL;
CREATE INDEX tickets_inbox_list ON tickets (tenant_id, inbox_id, received_at DESC, id DESC);
