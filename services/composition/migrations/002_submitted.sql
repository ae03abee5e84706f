-- A draft handed to outbound (sent now or scheduled) is 'submitted' until it is sent, or
-- reopened when the send is cancelled to edit it.
ALTER TABLE drafts DROP CONSTRAINT drafts_state_check;
ALTER TABLE drafts ADD CONSTRAINT drafts_state_check
    CHECK (state IN ('open', 'submitted', 'sent', 'discarded'));
ALTER TABLE drafts ADD COLUMN send_id uuid;
