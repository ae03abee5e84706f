-- Import jobs (DAT-2): an uploaded .eml, mbox or zip of .eml, processed mail by mail.
-- `done` counts the mails handled (created, duplicate or failed), in the file's order, so
-- a job taken over after a crash or restart resumes where it stood.
CREATE TABLE import_jobs (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    inbox_id      uuid NOT NULL,
    inbox_name    text NOT NULL,
    filename      text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('eml', 'mbox', 'zip')),
    size_bytes    bigint NOT NULL,
    state         text NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    total         integer,
    done          integer NOT NULL DEFAULT 0,
    created       integer NOT NULL DEFAULT 0,
    duplicates    integer NOT NULL DEFAULT 0,
    failures      jsonb NOT NULL DEFAULT '[]',
    error         text NOT NULL DEFAULT '',
    holder        text,
    lease_until   timestamptz,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX import_jobs_tenant ON import_jobs (tenant_id, created_at DESC);
CREATE INDEX import_jobs_pending ON import_jobs (created_at) WHERE state IN ('queued', 'running');

CREATE TABLE import_files (
    job_id  uuid PRIMARY KEY REFERENCES import_jobs(id) ON DELETE CASCADE,
    data    bytea NOT NULL
);
