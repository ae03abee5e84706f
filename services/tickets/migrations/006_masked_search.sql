-- Issue 16 (SEC-6): what an operator who may not see customers' addresses searches.
--
-- sb_unaddressed(text): the text with every mail address and phone number removed (each
-- replaced by a space). It is deliberately broader than the masking of answers
-- (services/runtime/masking.py), so that nothing an answer masks can be found by searching
-- for it: an address is the whole run of characters around an `@` up to a space, `<>",;`
-- or Japanese punctuation; a phone number is any run from `+`, `0` or `(0` (not right after
-- a digit) with at least nine more digits among spaces, brackets, dots and dashes. It reads
-- text already NFKC-normalised and case-folded (full-width forms are ASCII by then).
CREATE FUNCTION sb_unaddressed(t text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN regexp_replace(
         regexp_replace(t, '[^[:space:]<>",;、。「」]*@[^[:space:]<>",;、。「」]*', ' ', 'g'),
         '(?<![0-9])(?:\+|\(0|0)(?:[[:space:]().\-‐‑–—−ー]*[0-9]){9,}', ' ', 'g');

-- A message's search text without addresses and phone numbers: matched instead of
-- search_text for such an operator. Its grams are a subset of search_grams (removing a
-- run only splits words), so the GIN index on search_grams still narrows the candidates.
-- Adding the column computes it for every message already filed (the table is rewritten).
ALTER TABLE messages
    ADD COLUMN search_masked text GENERATED ALWAYS AS (sb_unaddressed(search_text)) STORED;

-- A contact's name and company, normalised like the contact search does, without
-- addresses and phone numbers (a display name is often the address itself).
ALTER TABLE contacts
    ADD COLUMN search_masked text GENERATED ALWAYS AS (
        sb_unaddressed(lower(normalize(name, NFKC)) || E'\n' || lower(normalize(company, NFKC)))
    ) STORED;

-- Which contacts an operator of some inboxes sees: those with a ticket in one of them,
-- answered from the index alone.
CREATE INDEX tickets_contact_inbox ON tickets (tenant_id, contact_id, inbox_id)
    WHERE contact_id IS NOT NULL;
