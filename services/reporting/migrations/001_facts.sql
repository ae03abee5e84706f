-- Reporting's facts and rollups (issue 19 §1, §2; docs/architecture.md "Reporting").
-- The schema and the metric definitions: /work/notes/issue19-facts-schema.md while
-- issue 19 is built, docs/architecture.md after.

-- One immutable row per measurable thing. `at` is when the thing happened (not when its
-- event arrived): the rollups bucket by it, so a late fact lands in its own period.
-- (tenant_id, metric, key) is the fact's identity: a redelivered or replayed event finds
-- it there and inserts nothing.
CREATE TABLE facts (
    id                 bigserial PRIMARY KEY,
    tenant_id          uuid NOT NULL,
    metric             text NOT NULL,             -- services/reporting/facts.py METRICS
    key                text NOT NULL,             -- unique per tenant and metric
    at                 timestamptz NOT NULL,
    inbox_id           uuid NOT NULL,
    ticket_id          uuid,                      -- NULL: a new mail without a ticket
    operator_id        uuid,                      -- the operator it is counted for
    other_operator_id  uuid,                      -- the other side (the approver of a request …)
    channel            text NOT NULL DEFAULT '',
    category           text NOT NULL DEFAULT '',
    priority           text NOT NULL DEFAULT '',  -- low, normal, high, urgent, ''
    labels             text[] NOT NULL DEFAULT '{}',
    wall_s             double precision,          -- NULL: a count-only fact
    business_s         double precision,          -- in the inbox's calendar; NULL as wall_s
    recorded_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, metric, key)
);
CREATE INDEX facts_tenant_at ON facts (tenant_id, at);
CREATE INDEX facts_tenant_metric_at ON facts (tenant_id, metric, at);

-- Facts not yet folded into the rollups: inserted with the fact, deleted by the roller
-- in the transaction that folds it (replicas take disjoint rows: FOR UPDATE SKIP LOCKED).
CREATE TABLE facts_unrolled (
    fact_id  bigint PRIMARY KEY
);

-- Reporting's own state of a ticket, from tickets' events: what a later fact needs
-- (the arrival, the customer message waiting for a reply, the open resolution episode,
-- the dimensions the ticket has now).
CREATE TABLE fact_tickets (
    tenant_id           uuid NOT NULL,
    ticket_id           uuid NOT NULL,
    inbox_id            uuid NOT NULL,
    channel             text NOT NULL DEFAULT '',  -- of the message that opened it
    category            text NOT NULL DEFAULT '',
    priority            text NOT NULL DEFAULT '',
    labels              text[] NOT NULL DEFAULT '{}',
    status              text NOT NULL,             -- open, pending, resolved, no_action, trash
    assignee_id         uuid,
    arrived_at          timestamptz NOT NULL,
    first_reply_at      timestamptz,               -- NULL: no reply yet
    waiting_since       timestamptz,               -- the oldest unanswered customer message
    waiting_key         text NOT NULL DEFAULT '',  -- its message id
    episode             integer NOT NULL DEFAULT 1,
    episode_started_at  timestamptz NOT NULL,
    episode_closed_at   timestamptz,               -- NULL: the episode is open
    PRIMARY KEY (tenant_id, ticket_id)
);

-- Who submitted each send (outbound's `submitted` carries the operator as its actor;
-- `sent` does not), and its Message-ID, to name the operator of a reply filed later.
CREATE TABLE fact_sends (
    tenant_id     uuid NOT NULL,
    send_id       uuid NOT NULL,
    operator_id   uuid,
    kind          text NOT NULL,
    message_id    text NOT NULL,
    inbox_id      uuid NOT NULL,
    ticket_id     uuid,
    submitted_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, send_id)
);
CREATE INDEX fact_sends_message ON fact_sends (tenant_id, message_id);

-- The rollups: per tenant × bucket (UTC hour; 15 minutes) × metric × inbox × dimension.
-- dimension '' (value '') is the inbox's total; else 'operator', 'label', 'category',
-- 'channel', 'priority' with the value. hist_* are services/reporting/histogram.py's
-- buckets (EDGES_S), empty for a count-only metric; sums and counts add, histograms add
-- element-wise (hist_add, hist_sum below).
CREATE TABLE rollups_hour (
    tenant_id      uuid NOT NULL,
    metric         text NOT NULL,
    dimension      text NOT NULL,
    bucket         timestamptz NOT NULL,
    inbox_id       uuid NOT NULL,
    value          text NOT NULL,
    count          bigint NOT NULL,
    sum_wall       double precision NOT NULL,
    sum_business   double precision NOT NULL,
    hist_wall      integer[] NOT NULL,
    hist_business  integer[] NOT NULL,
    PRIMARY KEY (tenant_id, metric, dimension, bucket, inbox_id, value)
);

CREATE TABLE rollups_15m (LIKE rollups_hour INCLUDING ALL);

-- Element-wise sum of two histograms; an empty one is zero.
CREATE FUNCTION hist_add(a integer[], b integer[]) RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN a IS NULL OR cardinality(a) = 0 THEN coalesce(b, '{}')
        WHEN b IS NULL OR cardinality(b) = 0 THEN a
        ELSE ARRAY(SELECT x + y FROM unnest(a, b) WITH ORDINALITY AS t(x, y, n) ORDER BY n)
    END
$$;

-- SELECT hist_sum(hist_wall) FROM rollups_hour WHERE … : the histogram of a range.
CREATE AGGREGATE hist_sum(integer[]) (
    SFUNC = hist_add,
    STYPE = integer[],
    INITCOND = '{}',
    COMBINEFUNC = hist_add,
    PARALLEL = SAFE
);
