-- issue 18 (facts): what assignment matches and the priority score counts, kept from
-- tickets' events: the ticket's detected language (ISO 639-1, '' unknown), the skills its
-- assignee must have ([{"name", "min_level"}]) and its contact's customer value
ALTER TABLE assign_tickets ADD COLUMN language text NOT NULL DEFAULT '';
ALTER TABLE assign_tickets ADD COLUMN required_skills jsonb NOT NULL DEFAULT '[]';
ALTER TABLE assign_tickets ADD COLUMN customer_value bigint NOT NULL DEFAULT 0;
