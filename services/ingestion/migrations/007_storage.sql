-- PostgreSQL's compression (pglz) cannot shrink base64-encoded attachments or files that
-- are compressed already, and it costs it tens of milliseconds per megabyte to find that
-- out. Such blobs are kept in `data_plain`, stored as they are; all others in `data`,
-- compressed as before. Exactly one of the two holds the bytes.
ALTER TABLE blobs ALTER COLUMN data DROP NOT NULL;
ALTER TABLE blobs ADD COLUMN data_plain bytea;
ALTER TABLE blobs ALTER COLUMN data_plain SET STORAGE EXTERNAL;
ALTER TABLE blobs ADD CONSTRAINT blobs_one_copy CHECK ((data IS NULL) <> (data_plain IS NULL));

-- An uploaded import file is kept only while its job runs, and is most often a zip.
ALTER TABLE import_files ALTER COLUMN data SET STORAGE EXTERNAL;

-- When the bytes were kept: the sweeper finishes a message left `stored` some time after
-- that, not after its received time (an imported mail keeps its own, long past, Date).
ALTER TABLE raw_messages ADD COLUMN stored_at timestamptz NOT NULL DEFAULT now();
DROP INDEX raw_messages_unparsed;
CREATE INDEX raw_messages_unparsed ON raw_messages (stored_at) WHERE state = 'stored';
