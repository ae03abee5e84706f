-- Exports (issue 19, DAT-1): one row per export job, its creator's, run in the background
-- by the export worker (exports_worker.py). `identity` is the creator's identity at the
-- time they asked (tenant, operator, permissions, inboxes): the owners' APIs are called
-- with it, so an export holds what its creator could see. The checkpoint — `cursor` (the
-- owner's stream cursor after the last row written), `done` and `file_bytes` (the file's
-- length then) — is written after the bytes are on disk: a restarted worker cuts the file
-- back to `file_bytes` and goes on from `cursor`, so the file is the same as if it had
-- never stopped.
CREATE TABLE exports (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    operator_id     uuid NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('tickets_csv','messages_csv','eml_zip','mbox')),
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued','running','done','failed')),
    period_start    timestamptz NOT NULL,
    period_end      timestamptz NOT NULL,
    inbox_id        uuid,
    columns         text[] NOT NULL DEFAULT '{}',
    tz              text NOT NULL DEFAULT 'UTC',
    masked          boolean NOT NULL DEFAULT false,
    keep_addresses  text[] NOT NULL DEFAULT '{}',  -- the tenant's own: never masked
    identity        jsonb NOT NULL,
    filename        text NOT NULL,
    done            bigint NOT NULL DEFAULT 0,
    total           bigint NOT NULL DEFAULT 0,
    cursor          text NOT NULL DEFAULT '',
    file_bytes      bigint NOT NULL DEFAULT 0,
    size_bytes      bigint NOT NULL DEFAULT 0,
    sha256          text NOT NULL DEFAULT '',
    error           text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    started_at      timestamptz,
    finished_at     timestamptz
);
CREATE INDEX exports_owner ON exports (tenant_id, operator_id, created_at DESC, id DESC);
CREATE INDEX exports_pending ON exports (created_at) WHERE state IN ('queued', 'running');
