-- Contacts (TKT-9): merging keeps merged_into chains flat by re-pointing the contacts that
-- were merged into the source; this finds them without reading every contact of the tenant.
CREATE INDEX contacts_merged ON contacts (tenant_id, merged_into) WHERE merged_into IS NOT NULL;
