-- Blocked senders (ING-5), per tenant (inbox_id null) or per inbox. Mail from them is
-- still stored and becomes a ticket, but in the trash, not in the operators' queue.
CREATE TABLE blocklist (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    inbox_id    uuid,
    kind        text NOT NULL CHECK (kind IN ('address', 'domain', 'pattern')),
    value       text NOT NULL,
    created_at  timestamptz NOT NULL,
    UNIQUE NULLS NOT DISTINCT (tenant_id, inbox_id, kind, value)
);
CREATE INDEX blocklist_tenant ON blocklist (tenant_id);
