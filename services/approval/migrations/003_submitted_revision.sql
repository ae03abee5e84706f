-- approval (issue 17): the author's revision when requested. `revision` moves with each
-- decision (the revision decided on); this one never moves, so the diff shows what the
-- approvers changed against what the author submitted.
ALTER TABLE requests ADD COLUMN submitted_revision integer;
UPDATE requests SET submitted_revision = coalesce(
    (SELECT min(d.revision) FROM decisions d WHERE d.request_id = requests.id), revision)
WHERE submitted_revision IS NULL;
ALTER TABLE requests ALTER COLUMN submitted_revision SET NOT NULL;
