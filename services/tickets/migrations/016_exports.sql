-- Exports (issue 19, DAT-1): tickets and messages of a period, oldest first, keyset-paged
-- by (received_at, id) — ExportTickets / ExportMessages.
CREATE INDEX IF NOT EXISTS tickets_export ON tickets (tenant_id, received_at, id);
CREATE INDEX IF NOT EXISTS messages_export ON messages (tenant_id, received_at, id);
