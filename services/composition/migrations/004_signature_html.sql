-- Issue 16 (CMP-5): the signature of an HTML mail, from the signature's HTML (sanitised).
-- Empty: the mail's HTML shows signature_text, escaped.
ALTER TABLE draft_revisions ADD COLUMN signature_html text NOT NULL DEFAULT '';
