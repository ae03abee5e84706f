import { Checks } from "./api";
import { Dialog } from "./Dialog";
import { useI18n } from "./i18n";

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
              <li key={i} className="error" data-code={f.code}>{f.message}</li>
            ))}
          </ul>
        </>
      )}
      {checks.findings.some((f) => f.severity === "warning") && (
        <>
          <p>{t("checks.warnings")}</p>
          <ul>
            {checks.findings.filter((f) => f.severity === "warning").map((f, i) => (
              <li key={i} data-code={f.code} data-testid="check-warning">{f.message}</li>
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
