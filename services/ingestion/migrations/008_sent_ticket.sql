-- A mail we sent (channel "sent", recorded by outbound through RecordSent) carries the
-- ticket it was sent from into its message.received, so routing files it there without
-- looking for its thread. Empty for every other mail.
ALTER TABLE raw_messages ADD COLUMN ticket_id uuid;
