-- satisfaction surveys after resolution (issue 20, OUT-5): one survey per resolution
-- episode with its durable due time, the answers, and when each contact was last
-- surveyed; sends of kind `survey` and "resolve without survey".

ALTER TABLE sends DROP CONSTRAINT sends_kind_check;
ALTER TABLE sends ADD CONSTRAINT sends_kind_check
    CHECK (kind IN ('reply', 'auto_reply', 'form_confirmation', 'survey'));
-- "resolve without survey": carried to the ticket's status change after sending
ALTER TABLE sends ADD COLUMN without_survey boolean NOT NULL DEFAULT false;

-- one row per resolution episode of a ticket; `due` until the delay has passed, then
-- `sent` (the send queued in the same transaction) or `skipped` (why in `reason`)
CREATE TABLE surveys (
    tenant_id      uuid NOT NULL,
    id             uuid PRIMARY KEY,
    ticket_id      uuid NOT NULL,
    episode        integer NOT NULL,
    inbox_id       uuid NOT NULL,
    resolved_at    timestamptz NOT NULL,
    resolved_by    uuid,                       -- the operator credited; NULL: none
    resolved_by_name text NOT NULL DEFAULT '',
    auto_resolved  boolean NOT NULL DEFAULT false,
    cause_event_id text NOT NULL,              -- the ticket.updated that resolved it
    due_at         timestamptz NOT NULL,
    state          text NOT NULL CHECK (state IN ('due', 'sent', 'skipped')),
    reason         text NOT NULL DEFAULT '',
    reopened       boolean NOT NULL DEFAULT false,  -- the episode ended (a reopen)
    recipient      text NOT NULL DEFAULT '',
    language       text NOT NULL DEFAULT 'en',
    question       text NOT NULL DEFAULT '',
    scale_style    text NOT NULL DEFAULT 'stars',
    inbox_name     text NOT NULL DEFAULT '',
    ticket_number  bigint NOT NULL DEFAULT 0,
    send_id        uuid,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    UNIQUE (tenant_id, ticket_id, episode)
);
CREATE INDEX surveys_due ON surveys (due_at) WHERE state = 'due';
CREATE INDEX surveys_open_episode ON surveys (tenant_id, ticket_id) WHERE NOT reopened;

-- one answer per survey: a second click changes it
CREATE TABLE survey_answers (
    tenant_id    uuid NOT NULL,
    survey_id    uuid PRIMARY KEY REFERENCES surveys(id) ON DELETE CASCADE,
    rating       integer NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment      text NOT NULL DEFAULT '',
    changes      integer NOT NULL DEFAULT 0,
    answered_at  timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

-- at most one survey per contact (address) and tenant in the inbox's N days
CREATE TABLE survey_contact_log (
    tenant_id   uuid NOT NULL,
    address     text NOT NULL,                 -- lower-cased
    sent_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, address)
);
