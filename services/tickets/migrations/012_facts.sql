-- issue 18 (facts): contacts' typed fields rules read and the priority score counts
ALTER TABLE contacts ADD COLUMN customer_value bigint
    CHECK (customer_value BETWEEN 0 AND 1000000);
ALTER TABLE contacts ADD COLUMN vip boolean NOT NULL DEFAULT false;

-- the ticket's detected language (ISO 639-1, '' unknown), the skills rules require of its
-- assignee ([{"name", "min_level"}]), its contact's customer value (a copy kept with the
-- contact's) and when it last started waiting (created, or open again): the priority
-- score counts from there (services/runtime/priority_score.py)
ALTER TABLE tickets ADD COLUMN language text NOT NULL DEFAULT '';
ALTER TABLE tickets ADD COLUMN required_skills jsonb NOT NULL DEFAULT '[]';
ALTER TABLE tickets ADD COLUMN customer_value bigint;
ALTER TABLE tickets ADD COLUMN waiting_since timestamptz;
UPDATE tickets t SET waiting_since = t.created_at,
    customer_value = (SELECT c.customer_value FROM contacts c
                      WHERE c.tenant_id = t.tenant_id AND c.id = t.contact_id);
ALTER TABLE tickets ALTER COLUMN waiting_since SET NOT NULL;
