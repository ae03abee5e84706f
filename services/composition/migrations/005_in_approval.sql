-- Issue 17: a draft whose approval is requested is 'in_approval' until the request is
-- sent back, cancelled, voided or approved (its author may not change it meanwhile; an
-- approver may). `approval_request_id` names the request it is, or was last, held for.
ALTER TABLE drafts DROP CONSTRAINT drafts_state_check;
ALTER TABLE drafts ADD CONSTRAINT drafts_state_check
    CHECK (state IN ('open', 'in_approval', 'submitted', 'sent', 'discarded'));
ALTER TABLE drafts ADD COLUMN approval_request_id uuid;
-- a ticket's drafts in progress: open ones and those awaiting approval
DROP INDEX drafts_ticket;
CREATE INDEX drafts_ticket ON drafts (tenant_id, ticket_id, updated_at DESC)
    WHERE state IN ('open', 'in_approval');
