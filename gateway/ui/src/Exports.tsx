// The Exports screen (issue 19, RPT-6 and DAT-1; permission `export`): a CSV of tickets or
// messages with the columns chosen, a report's CSV, or the period's mails as .eml files in
// a zip or as mbox — run in the background by the server; the caller's exports are listed
// with a progress bar each (done / total, read again every second while one runs) and a
// download when done.
import { useCallback, useEffect, useState } from "react";
import { api } from "./api";
import { Session } from "./App";
import { errorText } from "./errors";
import { useFormat } from "./format";
import { Key, useI18n } from "./i18n";
import { addDays, dayStart, InboxPicker, PeriodChoice, PeriodPicker, periodOf, ZonePicker } from "./Period";
import { Basis, Export, EXPORT_COLUMNS, EXPORT_KINDS, ExportKind, Granularity, GRANULARITIES, REPORTS, ReportName } from "./reportTypes";

function sizeText(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function Exports({ session }: { session: Session }) {
  const { t, tz: myTz } = useI18n();
  const { dateTime } = useFormat();
  const [kind, setKind] = useState<ExportKind>("tickets_csv");
  const [tz, setTz] = useState("");
  const zone = tz || myTz;
  const [choice, setChoice] = useState<PeriodChoice>({ from: "", to: "", preset: "30d" });
  const period = periodOf(choice, zone);
  const [inbox, setInbox] = useState("");
  const [columns, setColumns] = useState<Record<string, string[]>>(() => ({ ...EXPORT_COLUMNS }) as Record<string, string[]>);
  const [report, setReport] = useState<ReportName>("volume");
  const [granularity, setGranularity] = useState<Granularity>("day");
  const [basis, setBasis] = useState<Basis>("wall");
  const [items, setItems] = useState<Export[] | null>(null);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  const load = useCallback(async () => {
    try {
      const r = await api.get<{ items: Export[] }>("/exports", { limit: 50 });
      setItems(r.items);
    } catch (e) {
      setError(errorText(e, t, "report"));
    }
  }, [t]);
  useEffect(() => {
    void load();
  }, [load]);
  const running = (items ?? []).some((x) => x.state === "queued" || x.state === "running");
  useEffect(() => {
    if (!running) return;
    const timer = window.setInterval(() => void load(), 1000);
    return () => window.clearInterval(timer);
  }, [running, load]);

  const all = EXPORT_COLUMNS[kind];
  const chosen = columns[kind] ?? [];
  const toggle = (c: string, on: boolean) =>
    // kept in the listed order, whatever order they were ticked in
    setColumns({ ...columns, [kind]: (all ?? []).filter((x) => (x === c ? on : chosen.includes(x))) });

  const start = async () => {
    setBusy(true);
    setError("");
    try {
      const body: Record<string, unknown> = {
        kind,
        from: dayStart(period.from, zone),
        to: dayStart(addDays(period.to, 1), zone),
        tz: zone,
      };
      if (inbox) body.inbox_id = inbox;
      if (all) body.columns = chosen;
      if (kind === "report_csv") Object.assign(body, { report, granularity, basis });
      const made = await api.post<Export>("/exports", body);
      setItems((old) => [made, ...(old ?? []).filter((x) => x.id !== made.id)]);
    } catch (e) {
      setError(errorText(e, t, "report"));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div data-testid="exports">
      <h1>{t("nav.exports")}</h1>
      <div className="card export-form">
        <div className="filters">
          <label>
            {t("exp.kind")}
            <select value={kind} onChange={(e) => setKind(e.target.value as ExportKind)} data-testid="export-kind">
              {EXPORT_KINDS.map((k) => (
                <option key={k} value={k}>{t(`exp.kind.${k}`)}</option>
              ))}
            </select>
          </label>
          <PeriodPicker value={choice} onChange={setChoice} tz={zone} />
          <InboxPicker session={session} value={inbox} onChange={setInbox} />
          <ZonePicker value={tz} onChange={setTz} fallback={myTz} />
        </div>
        {kind === "report_csv" && (
          <div className="filters">
            <label>
              {t("exp.report")}
              <select value={report} onChange={(e) => setReport(e.target.value as ReportName)} data-testid="export-report">
                {REPORTS.map((r) => (
                  <option key={r} value={r}>{t(`rep.${r}`)}</option>
                ))}
              </select>
            </label>
            <label>
              {t("rep.granularity")}
              <select value={granularity} onChange={(e) => setGranularity(e.target.value as Granularity)} data-testid="export-granularity">
                {GRANULARITIES.map((g) => (
                  <option key={g} value={g}>{t(`rep.g.${g}`)}</option>
                ))}
              </select>
            </label>
            <label>
              {t("rep.basis")}
              <select value={basis} onChange={(e) => setBasis(e.target.value as Basis)}>
                <option value="wall">{t("rep.basis.wall")}</option>
                <option value="business">{t("rep.basis.business")}</option>
              </select>
            </label>
          </div>
        )}
        {all && (
          <fieldset className="columns" data-testid="export-columns">
            <legend>
              {t("exp.columns")}{" "}
              <button className="link small" onClick={() => setColumns({ ...columns, [kind]: all })} data-testid="export-columns-all">{t("exp.all")}</button>
              <button className="link small" onClick={() => setColumns({ ...columns, [kind]: [] })} data-testid="export-columns-none">{t("exp.none")}</button>
            </legend>
            <div className="checks">
              {all.map((c) => (
                <label key={c} className="check">
                  <input type="checkbox" checked={chosen.includes(c)} onChange={(e) => toggle(c, e.target.checked)} data-testid="export-column" data-column={c} />
                  {t(`exp.col.${c}` as Key)}
                </label>
              ))}
            </div>
          </fieldset>
        )}
        {(kind === "eml_zip" || kind === "mbox") && <p className="muted small">{t("exp.mail_help")}</p>}
        <div className="row gap">
          <button className="primary" disabled={busy || (!!all && chosen.length === 0)} onClick={() => void start()} data-testid="export-start">
            {t("exp.start")}
          </button>
          {error && <span className="error" role="alert" data-testid="export-error">{error}</span>}
        </div>
      </div>
      <h2>{t("exp.mine")}</h2>
      {items === null && !error && <p className="muted">{t("list.loading")}</p>}
      {items !== null && items.length === 0 && <p className="muted" data-testid="exports-empty">{t("exp.empty")}</p>}
      {items !== null && items.length > 0 && (
        <table className="table" data-testid="export-list">
          <thead>
            <tr>
              <th>{t("exp.kind")}</th>
              <th>{t("exp.file")}</th>
              <th>{t("exp.created")}</th>
              <th>{t("exp.progress")}</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {items.map((x) => (
              <tr key={x.id} data-testid="export-row" data-export={x.id} data-state={x.state}>
                <td>{t(`exp.kind.${x.kind}`)}</td>
                <td className="mono">{x.filename}</td>
                <td className="nowrap">{dateTime(x.created_at)}</td>
                <td>
                  <div className="progress-cell">
                  <progress
                    max={Math.max(1, x.total)}
                    value={x.state === "done" ? Math.max(1, x.total) : x.done}
                    aria-label={t("exp.progress")}
                    data-testid="export-progress"
                  />
                  <span className="small" data-testid="export-state">
                    {x.state === "failed"
                      ? t("exp.failed", { why: x.error ?? "" })
                      : t(`exp.state.${x.state}`, { done: x.done, total: x.total })}
                  </span>
                  </div>
                </td>
                <td className="nowrap">
                  {x.state === "done" && x.download && (
                    <a className="button" href={x.download} download={x.filename} data-testid="export-download">
                      {t("exp.download")} ({sizeText(x.size_bytes)})
                    </a>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
