-- agentless notifications (issue 20, OUT-6): one row per idempotency key and tenant —
-- the unique constraint is what makes a repeated or concurrent request queue nothing
-- twice; the mail is an outbox item of kind `notification` queued in the same
-- transaction. The state is read from that item (queued, sent, failed, bounced); `state`
-- here holds only a notification that queued nothing (`failed`, e.g. a bounced address).
-- The sends' kinds also name `campaign` (the campaigns engine's, migration 004).

ALTER TABLE sends DROP CONSTRAINT sends_kind_check;
ALTER TABLE sends ADD CONSTRAINT sends_kind_check
    CHECK (kind IN ('reply', 'auto_reply', 'form_confirmation', 'survey', 'campaign',
                    'notification'));

CREATE TABLE notifications (
    tenant_id        uuid NOT NULL,
    id               uuid PRIMARY KEY,
    idempotency_key  text NOT NULL,
    fingerprint      text NOT NULL,             -- SHA-256 of the request
    inbox_id         uuid NOT NULL,
    to_address       text NOT NULL,
    to_name          text NOT NULL DEFAULT '',
    template_id      text NOT NULL DEFAULT '',
    subject          text NOT NULL,
    send_id          uuid,                      -- NULL: nothing was queued (see state)
    state            text NOT NULL CHECK (state IN ('queued', 'failed')),
    error            text NOT NULL DEFAULT '',
    created_by       uuid,                      -- the operator (or API token's operator)
    created_at       timestamptz NOT NULL,
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX notifications_newest ON notifications (tenant_id, id DESC);
