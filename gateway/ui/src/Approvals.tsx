import { useCallback, useEffect, useState } from "react";
import { api } from "./api";
import { Session, go } from "./App";
import { Approval, useApprovalChanges } from "./approvalTypes";
import { errorText } from "./errors";
import { useFormat } from "./format";
import { elapsed, useI18n } from "./i18n";
import { stageText } from "./TicketApproval";

// The approval queue (issue 17, APR-3): the requests whose current stage the caller may
// decide, the oldest first, with how long each has waited, its stage, inbox, author and
// subject, late ones marked. Live: re-read on every `approval.changed` push.

export function ApprovalQueue({ session }: { session: Session }) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const [rows, setRows] = useState<Approval[] | null>(null);
  const [error, setError] = useState("");
  const [now, setNow] = useState(Date.now());

  const load = useCallback(async () => {
    try {
      const r = await api.get<{ approvals: Approval[]; count: number }>("/approvals", { limit: 200 });
      // oldest first, whatever order they came in
      setRows([...r.approvals].sort((a, b) => Date.parse(a.requested_at) - Date.parse(b.requested_at)));
      setError("");
    } catch (e) {
      setError(errorText(e, t));
    }
  }, [t]);

  useEffect(() => {
    void load();
  }, [load]);
  useApprovalChanges(load);
  useEffect(() => {
    const id = window.setInterval(() => setNow(Date.now()), 30000);
    return () => window.clearInterval(id);
  }, []);

  const inboxName = (id: string) => session.inboxes.find((i) => i.id === id)?.name ?? "";
  return (
    <main className="page" data-testid="approval-queue">
      <h1>{t("appr.queue")}</h1>
      <p className="muted small">{t("appr.queue_help")}</p>
      {error && <p className="error" role="alert">{error}</p>}
      {rows === null && !error && <p className="muted">{t("list.loading")}</p>}
      {rows !== null && rows.length === 0 && <p className="muted" data-testid="approval-empty">{t("appr.empty")}</p>}
      {rows !== null && rows.length > 0 && (
        <table className="table">
          <thead>
            <tr>
              <th>{t("appr.col.age")}</th>
              <th>{t("appr.col.subject")}</th>
              <th>{t("appr.col.stage")}</th>
              <th>{t("appr.col.inbox")}</th>
              <th>{t("appr.col.author")}</th>
              <th>{t("appr.col.requested_at")}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((a) => (
              <tr
                key={a.id}
                className={a.late ? "clickable late" : "clickable"}
                onClick={() => go(`/approvals/${a.id}`)}
                data-testid="approval-row"
                data-approval={a.id}
              >
                <td className="nowrap">
                  {elapsed(Math.max(0, Math.floor((now - Date.parse(a.requested_at)) / 1000)), t)}
                  {a.late && <span className="badge warn" data-testid="late">{t("appr.late")}</span>}
                </td>
                <td>
                  <a href={`#/approvals/${a.id}`} onClick={(e) => e.stopPropagation()}>{a.subject}</a>
                </td>
                <td>{stageText(a, t)}</td>
                <td>{inboxName(a.inbox_id)}</td>
                <td>{a.author.name}</td>
                <td className="nowrap">{dateTime(a.requested_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}
