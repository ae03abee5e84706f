CREATE TABLE tickets (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL,
    subject        text NOT NULL,
    status         text NOT NULL CHECK (status IN ('open','pending','resolved','no_action','trash')),
    inbox_id       uuid NOT NULL,
    inbox_name     text NOT NULL,
    from_name      text NOT NULL DEFAULT '',
    from_address   text NOT NULL DEFAULT '',
    received_at    timestamptz NOT NULL,
    assignee_id    uuid,
    assignee_name  text,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
-- The list: a tenant's tickets of a status, newest first, keyset-paged.
CREATE INDEX tickets_list ON tickets (tenant_id, status, received_at DESC, id DESC);
CREATE INDEX tickets_list_all ON tickets (tenant_id, received_at DESC, id DESC);

-- A message belongs to one ticket; its id is ingestion's id of the stored mail, so the
-- same mail can never become two messages (or two tickets).
CREATE TABLE messages (
    tenant_id          uuid NOT NULL,
    id                 uuid NOT NULL,
    ticket_id          uuid NOT NULL REFERENCES tickets(id),
    channel            text NOT NULL,
    received_at        timestamptz NOT NULL,
    rfc822_message_id  text NOT NULL DEFAULT '',
    summary            bytea NOT NULL,   -- switchboard.v1.MailSummary
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX messages_ticket ON messages (tenant_id, ticket_id, received_at);
