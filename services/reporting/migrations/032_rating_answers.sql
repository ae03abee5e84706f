-- Satisfaction surveys' additional questions and comments (issue 20, OUT-5): with the
-- latest survey.answered (the same guard as the rating, so a redelivered or older answer
-- changes nothing) the answers to the additional questions — [{"id", "rating", "text_ja",
-- "text_en"}], the texts as the survey was sent, so a question removed from the settings
-- later keeps its answers under its id — and the comment; the ticket's number for the
-- comments list.
ALTER TABLE ratings ADD COLUMN answers jsonb NOT NULL DEFAULT '[]';
ALTER TABLE ratings ADD COLUMN comment text NOT NULL DEFAULT '';
ALTER TABLE ratings ADD COLUMN ticket_number bigint NOT NULL DEFAULT 0;
-- the comments list, newest answer first (GET /api/v1/reports/satisfaction/comments)
CREATE INDEX ratings_tenant_comments ON ratings (tenant_id, answered_at DESC, survey_id DESC)
    WHERE comment <> '';
