-- The transactional outbox: an event row is written in the same transaction as the state
-- change it announces; the relay publishes it and stamps published_at after the ack.
CREATE TABLE outbox (
    event_id      uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    subject       text NOT NULL,
    payload       bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text
);
CREATE INDEX outbox_pending ON outbox (event_id) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Events a consumer has applied: recorded in the same transaction as the effect, so a
-- redelivery hits the primary key and changes nothing.
CREATE TABLE processed_events (
    consumer      text NOT NULL,
    event_id      uuid NOT NULL,
    tenant_id     uuid NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
