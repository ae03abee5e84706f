import { Checks, Finding } from "./api";
import { Dialog } from "./Dialog";
import { fieldLabel } from "./errors";
import { DICTS, Key, T, useI18n } from "./i18n";

const has = (key: string): key is Key => key in DICTS.en;

/** A finding in the operator's words (`check.<code>`, with the word or address it is
 * about and the field it is in); the server's English message for a code the UI does not
 * know. */
export function findingText(f: Finding, t: T): string {
  // changed_by_other says how in its message only: "opened this draft again" or "changed"
  const reopened = f.code === "changed_by_other" && f.message.includes("opened this draft again");
  const key = reopened ? "check.changed_by_other_reopened" : `check.${f.code}`;
  if (!has(key)) return f.message;
  const field = f.field ?? "";
  const label = has(`check.field.${field}`) ? t(`check.field.${field}` as Key) : fieldLabel(field, t, "reply") || field;
  const detail = f.code === "changed_by_other" && !f.detail ? t("check.someone") : (f.detail ?? "");
  return t(key, { detail, field: label });
}

// The pre-send checks' findings before a mail goes out (CMP-6): blocking ones to fix
// first, warnings to confirm (their codes are sent back as acknowledged).
export function ChecksDialog({
  checks,
  later,
  onCancel,
  onConfirm,
}: {
  checks: Checks;
  later: boolean;
  onCancel: () => void;
  onConfirm: (codes: string[]) => void;
}) {
  const { t } = useI18n();
  return (
    <Dialog label={t("checks.title")} testId="checks-dialog" onClose={onCancel}>
      <h2>{t("checks.title")}</h2>
      {checks.blocked && (
        <>
          <p>{t("checks.blocking")}</p>
          <ul>
            {checks.findings.filter((f) => f.severity === "blocking").map((f, i) => (
              <li key={i} className="error" data-code={f.code} title={f.message}>{findingText(f, t)}</li>
            ))}
          </ul>
        </>
      )}
      {checks.findings.some((f) => f.severity === "warning") && (
        <>
          <p>{t("checks.warnings")}</p>
          <ul>
            {checks.findings.filter((f) => f.severity === "warning").map((f, i) => (
              <li key={i} data-code={f.code} data-testid="check-warning" title={f.message}>{findingText(f, t)}</li>
            ))}
          </ul>
        </>
      )}
      <div className="actions">
        <button onClick={onCancel} data-testid="checks-cancel">{t("checks.cancel")}</button>
        {!checks.blocked && (
          <button className="primary" onClick={() => onConfirm(checks.findings.map((f) => f.code))} data-testid="checks-confirm">
            {later ? t("checks.confirm_schedule") : t("checks.confirm")}
          </button>
        )}
      </div>
    </Dialog>
  );
}
