-- satisfaction surveys (issue 20, OUT-5): up to 4 additional questions per inbox, each
-- [{"id", "text_ja", "text_en"}] on the same 1–5 scale; the questions as a survey was sent
-- (both texts, so an answer keeps the texts of its time whatever the settings become);
-- and each survey's answers to them, {"<id>": 1–5}.
ALTER TABLE survey_settings ADD COLUMN questions jsonb NOT NULL DEFAULT '[]';
ALTER TABLE surveys ADD COLUMN questions jsonb NOT NULL DEFAULT '[]';
ALTER TABLE survey_answers ADD COLUMN answers jsonb NOT NULL DEFAULT '{}';
