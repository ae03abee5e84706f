-- Issue 16 (CMP-5): an inbox whose replies are plain text only (drafts refuse HTML).
ALTER TABLE inboxes ADD COLUMN plain_text_only boolean NOT NULL DEFAULT false;
