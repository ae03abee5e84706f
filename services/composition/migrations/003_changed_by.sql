-- Who last changed a draft (saved it, or opened it again by cancelling its scheduled send)
-- and how: its author is shown the change of anyone else before sending (issue 16).
ALTER TABLE drafts ADD COLUMN changed_by uuid;
ALTER TABLE drafts ADD COLUMN changed_by_name text NOT NULL DEFAULT '';
ALTER TABLE drafts ADD COLUMN changed_at timestamptz;
ALTER TABLE drafts ADD COLUMN change text NOT NULL DEFAULT '';
UPDATE drafts d SET changed_by = r.saved_by, changed_by_name = r.saved_by_name,
    changed_at = r.saved_at, change = CASE WHEN r.revision = 1 THEN 'created' ELSE 'saved' END
FROM draft_revisions r WHERE r.draft_id = d.id AND r.revision = d.revision;
