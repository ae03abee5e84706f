-- Exports (issue 19, DAT-1): the raw mails of a period, oldest first, keyset-paged by
-- (received_at, id) — ExportRawMails.
CREATE INDEX IF NOT EXISTS raw_messages_export ON raw_messages (tenant_id, received_at, id);
