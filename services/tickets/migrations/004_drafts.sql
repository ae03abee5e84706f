-- The open drafts of each ticket (from composition's sb.compose.draft.changed): a ticket
-- with one is "editing" (CMP-4); tickets.draft_count is their number.
CREATE TABLE ticket_drafts (
    tenant_id  uuid NOT NULL,
    draft_id   uuid NOT NULL,
    ticket_id  uuid NOT NULL,
    PRIMARY KEY (tenant_id, draft_id)
);
CREATE INDEX ticket_drafts_ticket ON ticket_drafts (tenant_id, ticket_id);
