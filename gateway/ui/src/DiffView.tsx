import { DiffField } from "./approvalTypes";
import { Key, useI18n } from "./i18n";

// A draft's changes between two revisions (composition's word-level diff, Japanese too):
// per field, the runs of equal text, insertions (marked, underlined) and deletions
// (struck through). Used by the approval request view and on the ticket after sending.

const LABELS: Record<string, Key> = {
  subject: "reply.subject",
  body_text: "reply.body",
  body_html: "reply.body",
  signature_text: "reply.signature",
  to: "reply.to",
  cc: "reply.cc",
  bcc: "reply.bcc",
};

export function DiffView({ fields, testId = "diff" }: { fields: DiffField[]; testId?: string }) {
  const { t } = useI18n();
  // an HTML body's text and its plain text say the same: show one of them
  const shown = fields.some((f) => f.field === "body_text") ? fields.filter((f) => f.field !== "body_html") : fields;
  if (shown.length === 0) return <p className="muted small" data-testid={`${testId}-none`}>{t("appr.diff_none")}</p>;
  return (
    <div className="diff" data-testid={testId}>
      {shown.map((f) => (
        <div key={f.field} className="diff-field" data-field={f.field}>
          <div className="muted small">{LABELS[f.field] ? t(LABELS[f.field]) : f.field}</div>
          <div className="pre diff-text">
            {f.ops.map((o, i) =>
              o.op === "insert" ? (
                <ins key={i} data-testid="diff-insert">{o.text}</ins>
              ) : o.op === "delete" ? (
                <del key={i} data-testid="diff-delete">{o.text}</del>
              ) : (
                <span key={i}>{o.text}</span>
              ),
            )}
          </div>
        </div>
      ))}
    </div>
  );
}
