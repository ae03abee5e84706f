// The live reports (issue 19): RPT-7 the supervisor's live queue (waiting, late past the
// inbox's thresholds, near an SLA breach, per inbox) and RPT-5 live assignment (open and
// pending per assignee, and unassigned). Read once, then kept current by the live socket's
// `report.live_queue` / `report.live_assignment` pushes (at least every 2 s) — no reload.
import { useEffect, useState } from "react";
import { api, ApiError } from "./api";
import { Chart, chartOption } from "./Chart";
import { errorText } from "./errors";
import { useFormat } from "./format";
import { elapsed, useI18n } from "./i18n";
import { live, LiveEvent } from "./live";
import { LiveAssignment, LiveQueue } from "./reportTypes";

/** The figures of a live report: the GET first, then every push of its topic. */
function useLive<T>(path: string, topic: string, inboxId: string): { data: T | null; error: string } {
  const { t } = useI18n();
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    let gone = false;
    setData(null);
    api
      .get<T>(path, { inbox_id: inboxId })
      .then((d) => !gone && setData((old) => old ?? d))
      .catch((e) => !gone && setError(errorText(e, t, "report")));
    const off = live.on((e: LiveEvent) => {
      if (e.type === topic) {
        const { type: _type, ...body } = e;
        setData(body as unknown as T);
        setError("");
      } else if (e.type === "error" && e.topic === topic) {
        const err = e.error as { code?: string; message?: string; field?: string | null };
        setError(errorText(new ApiError(0, err.code ?? "unknown", err.message ?? "", err.field ?? undefined), t, "report"));
      }
    });
    const unsubscribe = live.subscribe(topic, inboxId ? { inbox_id: inboxId } : {});
    return () => {
      gone = true;
      off();
      unsubscribe();
    };
  }, [path, topic, inboxId, t]);
  return { data, error };
}

function AtLine({ at }: { at: string }) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  return (
    <p className="muted small" data-testid="live-at">
      {t("rep.live_at", { at: dateTime(at) })}
    </p>
  );
}

export function LiveQueueView({ inboxId }: { inboxId: string }) {
  const { t } = useI18n();
  const { data, error } = useLive<LiveQueue>("/reports/live-queue", "report.live_queue", inboxId);
  if (error) return <p className="error" role="alert" data-testid="live-error">{error}</p>;
  if (!data) return <p className="muted">{t("list.loading")}</p>;
  const names = data.inboxes.map((i) => i.name);
  const option = chartOption(names, [
    { name: t("rep.col.waiting"), values: data.inboxes.map((i) => i.waiting - i.late_total), stack: "w" },
    { name: t("rep.col.late"), values: data.inboxes.map((i) => i.late_total), stack: "w" },
    { name: t("rep.col.near_breach"), values: data.inboxes.map((i) => i.near_breach) },
    { name: t("rep.col.breached"), values: data.inboxes.map((i) => i.breached) },
  ], { horizontal: true });
  const wait = (s: number | null) => (s === null ? "—" : elapsed(Math.floor(s), t));
  return (
    <>
      <AtLine at={data.at} />
      <Chart option={option} testId="live-queue-chart" label={t("rep.live_queue")} height={Math.max(180, 70 + names.length * 34)} />
      <div className="table-scroll">
        <table className="table report-table" data-testid="live-queue-table">
          <thead>
            <tr>
              <th>{t("col.inbox")}</th>
              <th className="numcol">{t("rep.col.waiting")}</th>
              <th className="numcol">{t("rep.col.oldest_wait")}</th>
              <th>{t("rep.col.late")}</th>
              <th className="numcol">{t("rep.col.near_breach")}</th>
              <th className="numcol">{t("rep.col.breached")}</th>
            </tr>
          </thead>
          <tbody>
            {data.inboxes.map((i) => (
              <tr key={i.inbox_id} data-testid="queue-row" data-inbox={i.inbox_id}>
                <td>{i.name}</td>
                <td className="numcol" data-testid="queue-waiting">{i.waiting}</td>
                <td className="numcol">{wait(i.oldest_wait_seconds)}</td>
                <td data-testid="queue-late">
                  {i.late.length === 0 && "—"}
                  {i.late.map((l) => (
                    <span key={l.level} className="badge level" style={{ borderColor: l.color || undefined }} title={t("rep.level_after", { n: l.level, m: l.after_minutes })}>
                      <span className="swatch" style={{ background: l.color || "#ccc" }} />
                      {t("rep.late_after", { m: elapsed(l.after_minutes * 60, t), n: l.count })}
                    </span>
                  ))}
                </td>
                <td className="numcol">{i.near_breach}</td>
                <td className="numcol">{i.breached}</td>
              </tr>
            ))}
            <tr className="total" data-testid="queue-total">
              <td>{t("rep.total")}</td>
              <td className="numcol" data-testid="queue-waiting">{data.totals.waiting}</td>
              <td className="numcol">{wait(data.totals.oldest_wait_seconds)}</td>
              <td>{data.totals.late_total}</td>
              <td className="numcol">{data.totals.near_breach}</td>
              <td className="numcol">{data.totals.breached}</td>
            </tr>
          </tbody>
        </table>
      </div>
    </>
  );
}

export function LiveAssignmentView({ inboxId }: { inboxId: string }) {
  const { t } = useI18n();
  const { data, error } = useLive<LiveAssignment>("/reports/live-assignment", "report.live_assignment", inboxId);
  if (error) return <p className="error" role="alert" data-testid="live-error">{error}</p>;
  if (!data) return <p className="muted">{t("list.loading")}</p>;
  const rows = [
    ...data.assignees.map((a) => ({ id: a.operator_id, name: a.display_name, open: a.open, pending: a.pending })),
    { id: "", name: t("rep.unassigned"), ...data.unassigned },
  ];
  const option = chartOption(rows.map((r) => r.name), [
    { name: t("status.open"), values: rows.map((r) => r.open), stack: "a" },
    { name: t("status.pending"), values: rows.map((r) => r.pending), stack: "a" },
  ], { horizontal: true });
  return (
    <>
      <AtLine at={data.at} />
      <Chart option={option} testId="live-assignment-chart" label={t("rep.live_assignment")} height={Math.max(180, 70 + rows.length * 30)} />
      <div className="table-scroll">
        <table className="table report-table" data-testid="live-assignment-table">
          <thead>
            <tr>
              <th>{t("col.assignee")}</th>
              <th className="numcol">{t("status.open")}</th>
              <th className="numcol">{t("status.pending")}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.id || "unassigned"} data-testid="assignment-row" data-operator={r.id}>
                <td>{r.name}</td>
                <td className="numcol" data-testid="assignment-open">{r.open}</td>
                <td className="numcol">{r.pending}</td>
              </tr>
            ))}
            <tr className="total">
              <td>{t("rep.total")}</td>
              <td className="numcol">{data.totals.open}</td>
              <td className="numcol">{data.totals.pending}</td>
            </tr>
          </tbody>
        </table>
      </div>
    </>
  );
}
