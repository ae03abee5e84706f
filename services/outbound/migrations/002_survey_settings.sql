-- satisfaction surveys after resolution (issue 20, OUT-5): the survey settings per inbox.

CREATE TABLE survey_settings (
    tenant_id          uuid NOT NULL,
    inbox_id           uuid NOT NULL,
    enabled            boolean NOT NULL DEFAULT false,
    question_ja        text NOT NULL DEFAULT '',
    question_en        text NOT NULL DEFAULT '',
    scale_style        text NOT NULL DEFAULT 'stars' CHECK (scale_style IN ('stars', 'faces')),
    delay_minutes      integer NOT NULL DEFAULT 60 CHECK (delay_minutes BETWEEN 0 AND 43200),
    skip_auto_resolved boolean NOT NULL DEFAULT true,
    skip_spam_trash    boolean NOT NULL DEFAULT true,
    skip_labels        text[] NOT NULL DEFAULT '{}',
    contact_days       integer NOT NULL DEFAULT 0 CHECK (contact_days BETWEEN 0 AND 365),
    updated_at         timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, inbox_id)
);
