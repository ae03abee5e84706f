-- proactive outreach (issue 20, OUT-6): campaigns, one row per recipient (the audience
-- snapshot taken when the campaign starts), and the per-domain throttle's slots.
-- A campaign mail is an outbox item (`sends`) of kind `campaign`, queued in the same
-- transaction that marks its recipient `queued`: docs/architecture.md, "Campaigns".

ALTER TABLE sends DROP CONSTRAINT sends_kind_check;
ALTER TABLE sends ADD CONSTRAINT sends_kind_check
    CHECK (kind IN ('reply', 'auto_reply', 'form_confirmation', 'survey', 'campaign'));

CREATE TABLE campaigns (
    tenant_id        uuid NOT NULL,
    id               uuid PRIMARY KEY,
    name             text NOT NULL,
    inbox_id         uuid NOT NULL,
    subject          text NOT NULL,
    body             text NOT NULL,
    language         text NOT NULL DEFAULT '',
    list_id          uuid,
    segment_id       uuid,
    scheduled_at     timestamptz,
    -- the sending window in each recipient's time zone (NULL start: any time)
    window_start     integer CHECK (window_start BETWEEN 0 AND 1439),   -- minutes of the day
    window_end       integer CHECK (window_end BETWEEN 1 AND 1440),
    window_days      integer[] NOT NULL DEFAULT '{1,2,3,4,5,6,7}',
    throttle         integer CHECK (throttle > 0),      -- per recipient domain and minute
    state            text NOT NULL CHECK (state IN ('draft', 'scheduled', 'running', 'paused',
                     'cancelled', 'completed')),
    created_by       uuid,
    created_by_name  text NOT NULL DEFAULT '',
    -- the audience snapshot: done once every member is a recipient row; meanwhile the
    -- replica holding the lease takes it (again from the start after a crash: the rows
    -- are inserted once, by address)
    snapshot_done    boolean NOT NULL DEFAULT false,
    snapshot_owner   text,
    snapshot_until   timestamptz,
    tenant_zone      text NOT NULL DEFAULT 'UTC',       -- the tenant's, when it started
    errors           jsonb NOT NULL DEFAULT '[]',
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    started_at       timestamptz,
    finished_at      timestamptz,
    CHECK ((list_id IS NULL) <> (segment_id IS NULL))
);
CREATE INDEX campaigns_tenant ON campaigns (tenant_id, created_at DESC, id DESC);
CREATE INDEX campaigns_due ON campaigns (scheduled_at) WHERE state = 'scheduled';
CREATE INDEX campaigns_snapshot ON campaigns (snapshot_until)
    WHERE state IN ('running', 'paused') AND NOT snapshot_done;

CREATE TABLE campaign_recipients (
    tenant_id    uuid NOT NULL,
    id           uuid PRIMARY KEY,
    campaign_id  uuid NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    contact_id   uuid NOT NULL,
    address      text NOT NULL,                -- lower-cased: one row per address
    domain       text NOT NULL,                -- the address's, for the throttle
    name         text NOT NULL DEFAULT '',
    time_zone    text NOT NULL DEFAULT '',     -- the contact's ('' = the tenant's)
    language     text NOT NULL DEFAULT '',
    custom       jsonb NOT NULL DEFAULT '{}',
    state        text NOT NULL CHECK (state IN ('pending', 'queued', 'sent', 'failed', 'bounced',
                 'replied', 'unsubscribed', 'suppressed', 'cancelled')),
    not_before   timestamptz NOT NULL,         -- the window's next opening (or the throttle's)
    send_id      uuid,
    message_id   text,
    queued_at    timestamptz,
    sent_at      timestamptz,
    error        text NOT NULL DEFAULT '',
    updated_at   timestamptz NOT NULL,
    UNIQUE (campaign_id, address)
);
-- what the sender claims: pending rows by time
CREATE INDEX campaign_recipients_due ON campaign_recipients (not_before) WHERE state = 'pending';
-- totals per state (an index-only GROUP BY) and the recipients' pages
CREATE INDEX campaign_recipients_state ON campaign_recipients (campaign_id, state, id);
CREATE INDEX campaign_recipients_page ON campaign_recipients (campaign_id, id);
-- a reply or a bounce names the mail's Message-ID; the send's finish its send id
CREATE INDEX campaign_recipients_message ON campaign_recipients (tenant_id, message_id)
    WHERE message_id IS NOT NULL;
CREATE INDEX campaign_recipients_send ON campaign_recipients (send_id) WHERE send_id IS NOT NULL;

-- the per-domain throttle: mails queued per campaign, recipient domain and period (a
-- minute), counted in the transaction that queues them, shared by every replica
CREATE TABLE campaign_throttle (
    campaign_id  uuid NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    domain       text NOT NULL,
    period       timestamptz NOT NULL,
    used         integer NOT NULL,
    PRIMARY KEY (campaign_id, domain, period)
);
