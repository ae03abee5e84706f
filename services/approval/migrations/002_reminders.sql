-- stage-deadline reminders (issue 17): one row per request and stage reminded, written in
-- the transaction of its `approval.reminded` event, so a restart or a second replica
-- never reminds twice.
CREATE TABLE reminders (
    tenant_id    uuid NOT NULL,
    request_id   uuid NOT NULL REFERENCES requests (id),
    stage        integer NOT NULL,
    reminded_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, request_id, stage)
);
