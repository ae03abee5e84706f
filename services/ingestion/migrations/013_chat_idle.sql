-- Issue 21 (ING-6): web chats that went quiet end on their own (their transcript is mailed
-- to the visitor's address): the open conversations by their last inbound message.
CREATE INDEX channel_conversations_open ON channel_conversations (last_inbound_at)
    WHERE ended_at IS NULL;
