-- Exports of an aggregate report as CSV (issue 19, RPT-6): the report's request, as the
-- creator asked it (switchboard.v1.GetReportRequest, its zone filled in).
ALTER TABLE exports DROP CONSTRAINT exports_kind_check;
ALTER TABLE exports ADD CONSTRAINT exports_kind_check
    CHECK (kind IN ('tickets_csv', 'messages_csv', 'eml_zip', 'mbox', 'report_csv'));
ALTER TABLE exports ADD COLUMN report_request bytea;
