-- A send's draft kind (outbound's `submitted` says it): a forward's `sent` is also
-- counted as the fact `forward` (issue 19, RPT-3).
ALTER TABLE fact_sends ADD COLUMN draft_kind text NOT NULL DEFAULT '';
