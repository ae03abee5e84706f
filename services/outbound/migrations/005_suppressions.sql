-- the suppression list per tenant (issue 20, OUT-6): addresses no campaign mails again,
-- lower-cased; why (unsubscribed by its owner, bounced for good, added by an operator),
-- and the campaign (and its recipient) whose mail led to it. The first entry stays.

CREATE TABLE suppressions (
    tenant_id     uuid NOT NULL,
    address       text NOT NULL CHECK (address = lower(address)),
    reason        text NOT NULL CHECK (reason IN ('unsubscribed', 'bounced', 'manual')),
    campaign_id   uuid,
    recipient_id  uuid,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, address)
);
-- the list, newest first
CREATE INDEX suppressions_newest ON suppressions (tenant_id, created_at DESC, address);
