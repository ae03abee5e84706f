-- approval (issue 20, OUT-5): "resolve without survey" chosen by the author when asking
-- for approval; outbound's send resolves the ticket without a satisfaction survey.
ALTER TABLE requests ADD COLUMN without_survey boolean NOT NULL DEFAULT false;
