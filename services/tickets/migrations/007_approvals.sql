-- Issue 17: the approval requests of a ticket's drafts, kept from approval's events
-- (consumer tickets__approvals). A ticket is awaiting approval while one of its requests
-- is pending. A request that ended stays (pending false), so a late or redelivered
-- `approval.requested` cannot make it pending again.
CREATE TABLE ticket_approvals (
    tenant_id  uuid NOT NULL,
    request_id uuid NOT NULL,
    ticket_id  uuid NOT NULL,
    pending    boolean NOT NULL,
    PRIMARY KEY (tenant_id, request_id)
);
CREATE INDEX ticket_approvals_pending ON ticket_approvals (tenant_id, ticket_id) WHERE pending;
