-- ING-5 virus marks: the verdict of clamd on a mail's attachments. `scan_state` is ''
-- (nothing scanned: no scanner configured, no attachment, our own mail), 'clean',
-- 'infected' (`scan_findings`: [{index, filename, signature}]) or 'not_scanned' (the
-- scanner did not answer; the rescanner tries again from `scan_next_at`, backing off
-- with `scan_attempts`, and `scan_error` says why the last try failed).
ALTER TABLE raw_messages
    ADD COLUMN scan_state text NOT NULL DEFAULT '',
    ADD COLUMN scan_findings jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN scan_error text NOT NULL DEFAULT '',
    ADD COLUMN scanned_at timestamptz,
    ADD COLUMN scan_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN scan_next_at timestamptz;
CREATE INDEX raw_messages_scan_due ON raw_messages (scan_next_at)
    WHERE scan_state = 'not_scanned';
