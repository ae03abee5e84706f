-- Issue 20 (OUT-6): what outreach reads of contacts — labels, time zone, language, the
-- mailing address and the last contact — the tenant's custom-field definitions, contact
-- lists with their members, CSV import jobs and saved segments. Outbound reads an
-- audience through TicketsService.ResolveAudience; nothing here is read by another service.

ALTER TABLE contacts
    ADD COLUMN labels     text[] NOT NULL DEFAULT '{}',
    ADD COLUMN time_zone  text   NOT NULL DEFAULT '',   -- "": the tenant's
    ADD COLUMN language   text   NOT NULL DEFAULT ''
        CHECK (language IN ('', 'ja', 'en')),
    -- The contact's mailing address: the first of its addresses (contact_addresses is the
    -- arbiter; a trigger keeps this copy), '' without one. Segments and audiences read it.
    ADD COLUMN address    text   NOT NULL DEFAULT '';

CREATE FUNCTION contact_first_address() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The contact row is already locked by the changing transaction (created in it, or
    -- FOR NO KEY UPDATE by an edit or a merge): this never waits on another filing.
    IF TG_OP <> 'INSERT' THEN
        UPDATE contacts SET address = coalesce((SELECT min(a.address) FROM contact_addresses a
            WHERE a.tenant_id = OLD.tenant_id AND a.contact_id = OLD.contact_id), '')
         WHERE tenant_id = OLD.tenant_id AND id = OLD.contact_id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        UPDATE contacts SET address = coalesce((SELECT min(a.address) FROM contact_addresses a
            WHERE a.tenant_id = NEW.tenant_id AND a.contact_id = NEW.contact_id), '')
         WHERE tenant_id = NEW.tenant_id AND id = NEW.contact_id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER contact_addresses_first AFTER INSERT OR UPDATE OR DELETE ON contact_addresses
    FOR EACH ROW EXECUTE FUNCTION contact_first_address();

UPDATE contacts c SET address = f.address
  FROM (SELECT tenant_id, contact_id, min(address) AS address FROM contact_addresses
         GROUP BY tenant_id, contact_id) f
 WHERE c.tenant_id = f.tenant_id AND c.id = f.contact_id;

-- The last contact: the latest message (either direction, mail or phone memo) of any of
-- the contact's tickets. Kept apart from `contacts`: filing holds the contact FOR SHARE
-- (services/tickets/contacts.py _follow), so two filings updating the contact row would
-- deadlock; an upsert of this row does not.
CREATE TABLE contact_activity (
    tenant_id        uuid NOT NULL,
    contact_id       uuid NOT NULL,
    last_contact_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, contact_id)
);
CREATE INDEX contact_activity_at ON contact_activity (tenant_id, last_contact_at);

CREATE FUNCTION contact_activity_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO contact_activity AS ca (tenant_id, contact_id, last_contact_at)
        VALUES (NEW.tenant_id, NEW.contact_id, NEW.last_message_at)
        ON CONFLICT (tenant_id, contact_id) DO UPDATE
            SET last_contact_at = EXCLUDED.last_contact_at
          WHERE ca.last_contact_at < EXCLUDED.last_contact_at;
    RETURN NULL;
END
$$;
CREATE TRIGGER tickets_contact_activity
    AFTER INSERT OR UPDATE OF last_message_at, contact_id ON tickets
    FOR EACH ROW
    WHEN (NEW.contact_id IS NOT NULL AND NEW.last_message_at IS NOT NULL)
    EXECUTE FUNCTION contact_activity_touch();

INSERT INTO contact_activity (tenant_id, contact_id, last_contact_at)
    SELECT tenant_id, contact_id, max(last_message_at) FROM tickets
     WHERE contact_id IS NOT NULL AND last_message_at IS NOT NULL
     GROUP BY tenant_id, contact_id;

-- Segment paths over 1,000,000 contacts of a tenant (tests/bench/segments.py). Partial on
-- what an audience holds (not merged away, with an address): a count through them needs
-- no visit to the row to check that.
CREATE INDEX contacts_audience ON contacts (tenant_id, id)
    WHERE merged_into IS NULL AND address <> '';
CREATE INDEX contacts_created ON contacts (tenant_id, created_at)
    WHERE merged_into IS NULL AND address <> '';
CREATE INDEX contacts_labels ON contacts USING gin (labels)
    WHERE merged_into IS NULL AND address <> '';
CREATE INDEX contacts_custom ON contacts USING gin (custom)
    WHERE merged_into IS NULL AND address <> '';
CREATE INDEX contacts_address ON contacts (tenant_id, address)
    WHERE merged_into IS NULL AND address <> '';
CREATE INDEX contacts_domain ON contacts (tenant_id, split_part(address, '@', 2))
    WHERE merged_into IS NULL AND address <> '';
CREATE INDEX contacts_time_zone ON contacts (tenant_id, time_zone)
    WHERE merged_into IS NULL AND address <> '';

-- Custom values that are numbers, one row each, so a range of a number field is an index
-- range (contacts.custom holds them as text); kept by a trigger on contacts.custom.
CREATE TABLE contact_numbers (
    tenant_id   uuid NOT NULL,
    contact_id  uuid NOT NULL,
    key         text NOT NULL,
    value       numeric NOT NULL,
    PRIMARY KEY (tenant_id, contact_id, key)
);
CREATE INDEX contact_numbers_value ON contact_numbers (tenant_id, key, value, contact_id);

CREATE FUNCTION contact_numbers_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM contact_numbers WHERE tenant_id = OLD.tenant_id AND contact_id = OLD.id;
    END IF;
    INSERT INTO contact_numbers (tenant_id, contact_id, key, value)
        SELECT NEW.tenant_id, NEW.id, e.key, e.value::numeric
          FROM jsonb_each_text(NEW.custom) e
         WHERE e.value ~ '^-?[0-9]{1,30}(\.[0-9]{1,30})?$';
    RETURN NULL;
END
$$;
CREATE TRIGGER contacts_numbers_new AFTER INSERT ON contacts
    FOR EACH ROW WHEN (NEW.custom <> '{}'::jsonb) EXECUTE FUNCTION contact_numbers_keep();
CREATE TRIGGER contacts_numbers_changed AFTER UPDATE OF custom ON contacts
    FOR EACH ROW WHEN (OLD.custom IS DISTINCT FROM NEW.custom)
    EXECUTE FUNCTION contact_numbers_keep();
INSERT INTO contact_numbers (tenant_id, contact_id, key, value)
    SELECT c.tenant_id, c.id, e.key, e.value::numeric
      FROM contacts c, jsonb_each_text(c.custom) e
     WHERE e.value ~ '^-?[0-9]{1,30}(\.[0-9]{1,30})?$';

-- The tenant's custom fields of contacts: [{"key","label","type"}] (type text|number|date).
CREATE TABLE contact_fields (
    tenant_id   uuid PRIMARY KEY,
    fields      jsonb NOT NULL DEFAULT '[]',
    updated_at  timestamptz NOT NULL
);

CREATE TABLE contact_lists (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    name          text NOT NULL,
    description   text NOT NULL DEFAULT '',
    member_count  integer NOT NULL DEFAULT 0,   -- kept in the members' transactions
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX contact_lists_tenant ON contact_lists (tenant_id, created_at, id);

CREATE TABLE contact_list_members (
    tenant_id   uuid NOT NULL,
    list_id     uuid NOT NULL REFERENCES contact_lists(id) ON DELETE CASCADE,
    contact_id  uuid NOT NULL REFERENCES contacts(id),
    added_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, list_id, contact_id)
);
CREATE INDEX contact_list_members_contact ON contact_list_members (tenant_id, contact_id);

-- CSV imports into a list: the raw file is kept with the job, so a restarted tickets
-- resumes a job at `processed` (lines are applied in batches, each batch and its
-- progress in one transaction).
CREATE TABLE contact_imports (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    list_id      uuid NOT NULL REFERENCES contact_lists(id) ON DELETE CASCADE,
    state        text NOT NULL CHECK (state IN ('running', 'done', 'failed')),
    csv          bytea NOT NULL,
    total_lines  integer NOT NULL DEFAULT 0,
    processed    integer NOT NULL DEFAULT 0,
    imported     integer NOT NULL DEFAULT 0,
    failed       integer NOT NULL DEFAULT 0,
    errors       jsonb NOT NULL DEFAULT '[]',   -- [{"line","message"}]
    message      text NOT NULL DEFAULT '',      -- why the whole job failed
    created_by   text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    finished_at  timestamptz
);
CREATE INDEX contact_imports_running ON contact_imports (created_at) WHERE state = 'running';

CREATE TABLE segments (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    name        text NOT NULL,
    match       text NOT NULL CHECK (match IN ('all', 'any')),
    conditions  jsonb NOT NULL,   -- [{"field","op","value"}]
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX segments_tenant ON segments (tenant_id, created_at, id);
