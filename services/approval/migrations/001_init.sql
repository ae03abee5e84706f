-- approval (issue 17): policies, operator flags, requests and their stage decisions.

CREATE TABLE approval_policies (
    tenant_id    uuid NOT NULL,
    id           uuid PRIMARY KEY,
    inbox_id     uuid,                      -- NULL: the tenant's policy
    name         text NOT NULL,
    body         jsonb NOT NULL,            -- stages, conditions, skip, allow_self_approval
    version      integer NOT NULL DEFAULT 1,
    updated_by   uuid,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
-- one policy per tenant and one per inbox
CREATE UNIQUE INDEX approval_policies_scope ON approval_policies (
    tenant_id, coalesce(inbox_id, '00000000-0000-0000-0000-000000000000')
);

CREATE TABLE operator_flags (
    tenant_id    uuid NOT NULL,
    operator_id  uuid NOT NULL,
    until        timestamptz NOT NULL,      -- always needs approval until then
    set_by       uuid NOT NULL,
    set_by_name  text NOT NULL DEFAULT '',
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, operator_id)
);

CREATE TABLE requests (
    tenant_id            uuid NOT NULL,
    id                   uuid PRIMARY KEY,
    draft_id             uuid NOT NULL,
    revision             integer NOT NULL,   -- the revision bound (the last one decided on)
    content_hash         text NOT NULL,
    ticket_id            uuid,
    inbox_id             uuid NOT NULL,
    author_id            uuid NOT NULL,
    author_name          text NOT NULL DEFAULT '',
    subject              text NOT NULL DEFAULT '',
    policy_id            uuid,              -- NULL: the built-in policy
    stages               jsonb NOT NULL,    -- the policy's stages when requested
    allow_self_approval  boolean NOT NULL,
    state                text NOT NULL CHECK (state IN
                             ('pending', 'approved', 'sent_back', 'cancelled', 'voided', 'sent')),
    stage                integer NOT NULL DEFAULT 0,
    note                 text NOT NULL DEFAULT '',
    send_at              timestamptz,
    status_after         smallint NOT NULL DEFAULT 0,
    requested_at         timestamptz NOT NULL,
    stage_started_at     timestamptz NOT NULL,
    finished_at          timestamptz,
    finished_by          uuid,
    finished_by_name     text NOT NULL DEFAULT ''
);
-- one live request per draft
CREATE UNIQUE INDEX requests_live ON requests (tenant_id, draft_id)
    WHERE state IN ('pending', 'approved');
CREATE INDEX requests_pending ON requests (tenant_id, requested_at) WHERE state = 'pending';
CREATE INDEX requests_draft ON requests (tenant_id, draft_id, requested_at);

-- one decision per approver and stage; the request's row lock orders them
CREATE TABLE decisions (
    tenant_id      uuid NOT NULL,
    request_id     uuid NOT NULL REFERENCES requests (id),
    stage          integer NOT NULL,
    approver_id    uuid NOT NULL,
    approver_name  text NOT NULL DEFAULT '',
    verdict        text NOT NULL CHECK (verdict IN ('approve', 'approve_and_send', 'send_back')),
    comment        text NOT NULL DEFAULT '',
    revision       integer NOT NULL,
    decided_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, request_id, stage, approver_id)
);
