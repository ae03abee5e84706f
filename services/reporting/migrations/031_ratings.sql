-- Satisfaction ratings (issue 20, OUT-5; docs/architecture.md "Reporting: satisfaction"):
-- one row per survey, from outbound's survey.sent and survey.answered. Few beside the
-- facts (one per resolution surveyed), so the satisfaction report groups them when read.
-- The answer is the latest survey.answered by (its occurred_at, its event id, a UUIDv7):
-- a redelivered or late older answer changes nothing.
CREATE TABLE ratings (
    tenant_id      uuid NOT NULL,
    survey_id      uuid NOT NULL,
    ticket_id      uuid NOT NULL,
    inbox_id       uuid NOT NULL,
    episode        integer NOT NULL,
    operator_id    uuid,                 -- who resolved the ticket; NULL: nobody
    operator_name  text NOT NULL DEFAULT '',
    resolved_at    timestamptz NOT NULL,
    sent_at        timestamptz,          -- survey.sent's occurred_at; NULL until it is seen
    answered_at    timestamptz,          -- the answer's (the latest survey.answered's)
    answer_event   uuid,                 -- … and its event id
    rating         smallint CHECK (rating BETWEEN 1 AND 5),
    -- the instant the survey counts at: when it was sent (when only an answer has been
    -- seen, the resolution's)
    counted_at     timestamptz GENERATED ALWAYS AS (coalesce(sent_at, resolved_at)) STORED,
    PRIMARY KEY (tenant_id, survey_id)
);
CREATE INDEX ratings_tenant_counted ON ratings (tenant_id, counted_at);
-- the name the events gave an operator accounts no longer lists (ratings_store.names_missing)
CREATE INDEX ratings_tenant_operator ON ratings (tenant_id, operator_id, resolved_at DESC);
