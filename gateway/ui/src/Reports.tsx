// The Reports section (issue 19, RPT-1…RPT-7): one screen per report, reached from the side
// navigation, shown with the permission `see_reports` only (the server checks it again);
// the Exports screen beside them with the permission `export`. A report's filters (period,
// granularity, inbox, time zone, wall or business time) stay when another report is chosen.
// Loaded on demand (App.tsx): ECharts comes with it, not with the app's first load.
import { ReactNode, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { api } from "./api";
import { Session } from "./App";
import { Chart, chartOption, Series } from "./Chart";
import { errorText, permissionLabel } from "./errors";
import { Exports } from "./Exports";
import { Key, useI18n } from "./i18n";
import { LiveAssignmentView, LiveQueueView } from "./LiveReports";
import { live } from "./live";
import { InboxPicker, PeriodChoice, PeriodPicker, periodOf, today, ZonePicker } from "./Period";
import { ReportTable, topicText } from "./ReportTable";
import { Satisfaction } from "./Satisfaction";
import {
  Basis,
  Granularity,
  GRANULARITIES,
  periodText,
  Report,
  ReportName,
  ReportQuery,
  REPORTS,
  shareText,
} from "./reportTypes";

const LIVE = ["live_queue", "live_assignment"] as const;
const BASIS_MATTERS: ReportName[] = ["response_times", "operators"];

export interface Filters extends PeriodChoice {
  granularity: Granularity;
  tz: string; // "" = the API's default (the viewer's zone, else the tenant's)
  inbox_id: string;
  basis: Basis;
}

export function ReportsScreen({ section, session }: { section: string; session: Session }) {
  const { t } = useI18n();
  const mayReports = session.may("see_reports");
  const mayExport = session.may("export");
  const [filters, setFilters] = useState<Filters>(() => ({
    from: "",
    to: "",
    preset: "7d",
    granularity: "day",
    tz: "",
    inbox_id: "",
    basis: "wall",
  }));
  // the API's default zone: the viewer's own, else the tenant's (as GET /me says)
  const defaultTz = session.me.time_zone || "UTC";

  const wanted = section === "exports" ? "exports" : section || (mayReports ? "volume" : "exports");
  const refused = wanted === "exports" ? !mayExport : !mayReports;
  const needs = wanted === "exports" ? "export" : "see_reports";

  const link = (key: string, label: string, href: string) => (
    <a key={key} href={href} className={key === wanted ? "current" : ""} data-testid={`reports-nav-${key}`}>{label}</a>
  );

  return (
    <div className="admin-screen reports-screen" data-testid="reports">
      <nav className="side" aria-label={t("nav.reports")}>
        {mayReports && (
          <>
            <h2>{t("nav.reports")}</h2>
            {REPORTS.map((r) => link(r, t(`rep.${r}`), `#/reports/${r}`))}
            <div className="navgroup">
              <h3 className="muted small">{t("rep.group.live")}</h3>
              {LIVE.map((r) => link(r, t(`rep.${r}`), `#/reports/${r}`))}
            </div>
          </>
        )}
        {mayExport && (
          <div className="navgroup">
            <h3 className="muted small">{t("rep.group.data")}</h3>
            {link("exports", t("nav.exports"), "#/exports")}
          </div>
        )}
      </nav>
      <main className="page" data-testid="reports-page" data-section={wanted}>
        {refused ? (
          <p className="error" role="alert" data-testid="reports-refused">
            {t("error.permission_needs", { p: permissionLabel(needs, t) })}
          </p>
        ) : wanted === "exports" ? (
          <Exports session={session} />
        ) : wanted === "live_queue" || wanted === "live_assignment" ? (
          <>
            <h1>{t(`rep.${wanted}`)}</h1>
            <div className="filters">
              <InboxPicker session={session} value={filters.inbox_id} onChange={(inbox_id) => setFilters({ ...filters, inbox_id })} />
            </div>
            {wanted === "live_queue" ? (
              <LiveQueueView inboxId={filters.inbox_id} />
            ) : (
              <LiveAssignmentView inboxId={filters.inbox_id} />
            )}
          </>
        ) : (REPORTS as string[]).includes(wanted) ? (
          <ReportView key={wanted} name={wanted as ReportName} filters={filters} setFilters={setFilters} session={session} defaultTz={defaultTz} />
        ) : (
          <p className="muted">{t("error.not_found")}</p>
        )}
      </main>
    </div>
  );
}

function toQuery(f: Filters, defaultTz: string): ReportQuery {
  const { from, to } = periodOf(f, f.tz || defaultTz);
  return { from, to, granularity: f.granularity, tz: f.tz, inbox_id: f.inbox_id, basis: f.basis };
}

function csvHref(name: ReportName, q: ReportQuery): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v) p.set(k, String(v));
  return `/api/v1/reports/${name}.csv?${p}`;
}

/** A report: re-read when its filters change, when tickets change (a mail arrives) and
 * every half minute while its period reaches today. */
function useReport(name: ReportName, q: ReportQuery, tz: string) {
  const { t } = useI18n();
  const [report, setReport] = useState<Report | null>(null);
  const [error, setError] = useState("");
  const [loading, setLoading] = useState(true);
  const generation = useRef(0);
  const key = JSON.stringify(q);

  const load = useCallback(async () => {
    const gen = ++generation.current;
    setLoading(true);
    try {
      const r = await api.get<Report>(`/reports/${name}`, JSON.parse(key) as Record<string, string>);
      if (gen !== generation.current) return;
      setReport(r);
      setError("");
    } catch (e) {
      if (gen === generation.current) setError(errorText(e, t, "report"));
    } finally {
      if (gen === generation.current) setLoading(false);
    }
  }, [name, key, t]);

  useEffect(() => {
    void load();
    return () => {
      generation.current++;
    };
  }, [load]);

  const reachesToday = q.to >= today(tz);
  useEffect(() => {
    if (!reachesToday) return;
    let timers: number[] = [];
    // a ticket event: reporting counts it a moment later (its facts, then the roll-up), so
    // read again shortly after, and once more a little later; a burst reads once
    const off = live.on((e) => {
      if (!e.type.startsWith("ticket.") && e.type !== "hello") return;
      timers.forEach((x) => window.clearTimeout(x));
      timers = [1500, 6000].map((ms) => window.setTimeout(() => void load(), ms));
    });
    const every = window.setInterval(() => void load(), 30000);
    return () => {
      off();
      timers.forEach((x) => window.clearTimeout(x));
      window.clearInterval(every);
    };
  }, [load, reachesToday]);

  return { report, error, loading, reload: load };
}

function ReportView({
  name,
  filters,
  setFilters,
  session,
  defaultTz,
}: {
  name: ReportName;
  filters: Filters;
  setFilters: (f: Filters) => void;
  session: Session;
  defaultTz: string;
}) {
  const { t } = useI18n();
  const q = useMemo(() => toQuery(filters, defaultTz), [filters, defaultTz]);
  const { report, error, loading, reload } = useReport(name, q, filters.tz || defaultTz);
  const set = (p: Partial<Filters>) => setFilters({ ...filters, ...p });

  return (
    <>
      <div className="row gap report-head">
        <h1>{t(`rep.${name}`)}</h1>
        <span className="spacer" />
        {loading && <span className="muted small">{t("list.loading")}</span>}
        <button className="small" onClick={() => void reload()} data-testid="report-refresh">{t("rep.refresh")}</button>
        {error ? (
          <button disabled title={error} data-testid="report-csv">{t("rep.csv")}</button>
        ) : (
          <a className="button" href={csvHref(name, q)} download data-testid="report-csv">{t("rep.csv")}</a>
        )}
      </div>
      <div className="filters" data-testid="report-filters">
        <PeriodPicker value={filters} onChange={(p) => set(p)} tz={filters.tz || defaultTz} />
        <label>
          {t("rep.granularity")}
          <select value={filters.granularity} onChange={(e) => set({ granularity: e.target.value as Granularity })} data-testid="report-granularity">
            {GRANULARITIES.map((g) => (
              <option key={g} value={g}>{t(`rep.g.${g}`)}</option>
            ))}
          </select>
        </label>
        <InboxPicker session={session} value={filters.inbox_id} onChange={(inbox_id) => set({ inbox_id })} />
        <ZonePicker value={filters.tz} onChange={(tz) => set({ tz })} fallback={defaultTz} />
        {BASIS_MATTERS.includes(name) && (
          <span className="switch" role="radiogroup" aria-label={t("rep.basis")} data-testid="report-basis">
            {(["wall", "business"] as Basis[]).map((b) => (
              <label key={b} className="check">
                <input type="radio" name="basis" checked={filters.basis === b} onChange={() => set({ basis: b })} data-testid={`basis-${b}`} />
                {t(`rep.basis.${b}`)}
              </label>
            ))}
          </span>
        )}
      </div>
      {error && <p className="error" role="alert" data-testid="report-error">{error}</p>}
      {report && report.report === name && <ReportBody report={report} />}
    </>
  );
}

function ReportBody({ report }: { report: Report }) {
  const { t, lang } = useI18n();
  const periods = report.series.map((r) => periodText(r, report.granularity, report.tz, lang, t));
  const num = (k: string) => report.series.map((r) => (typeof r[k] === "number" ? (r[k] as number) : null));
  const minutes = (k: string) => report.series.map((r) => (typeof r[k] === "number" ? Math.round((r[k] as number) / 6) / 10 : null));
  const table = <ReportTable columns={report.table.columns} rows={report.table.rows} granularity={report.granularity} tz={report.tz} />;

  if (report.report === "volume") {
    const option = chartOption(periods, [
      { name: t("rep.col.received"), values: num("received") },
      { name: t("rep.col.sent"), values: num("sent") },
    ]);
    return (
      <>
        <Totals items={[["received", report.totals.received], ["sent", report.totals.sent]]} />
        <Chart option={option} testId="report-chart" label={t("rep.volume")} />
        {table}
      </>
    );
  }
  if (report.report === "satisfaction") {
    const x = report.totals;
    const rate = typeof x.response_rate === "number" ? shareText(x.response_rate) : null;
    const totals = <Totals items={[["surveys_sent", x.surveys_sent], ["surveys_answered", x.surveys_answered], ["response_rate", rate], ["average_rating", x.average_rating]]} />;
    return <Satisfaction report={report} periods={periods} num={num} totals={totals} table={table} />;
  }
  if (report.report === "response_times") return <ResponseTimes report={report} periods={periods} minutes={minutes} num={num} table={table} />;
  if (report.report === "operators") {
    const rows = report.table.rows.filter((r) => r[0] !== "total");
    const col = (c: string) => report.table.columns.indexOf(c);
    const names = rows.map((r) => String(r[col("operator")] ?? ""));
    const metrics = ["replies_sent", "approval_requests", "send_backs_received", "approvals_given", "forwards", "transfers", "deletions"];
    const option = chartOption(
      names,
      metrics.map((m) => ({ name: t(`rep.col.${m}` as Key), values: rows.map((r) => Number(r[col(m)] ?? 0)) })),
      { horizontal: true },
    );
    return (
      <>
        <Chart option={option} testId="report-chart" label={t("rep.operators")} height={Math.max(220, 60 + names.length * 36)} />
        {table}
      </>
    );
  }
  return <Topics report={report} periods={periods} table={table} />;
}

function Totals({ items }: { items: [string, unknown][] }) {
  const { t } = useI18n();
  return (
    <div className="totals" data-testid="report-totals">
      {items.map(([k, v]) => (
        <span key={k} className="total-box" data-testid={`total-${k}`}>
          <span className="muted small">{t(`rep.col.${k}` as Key)}</span>
          <strong data-testid={`total-${k}-value`}>{v === null || v === undefined ? "—" : String(v)}</strong>
        </span>
      ))}
    </div>
  );
}

function ResponseTimes({
  report,
  periods,
  minutes,
  num,
  table,
}: {
  report: Report;
  periods: string[];
  minutes: (k: string) => (number | null)[];
  num: (k: string) => (number | null)[];
  table: ReactNode;
}) {
  const { t } = useI18n();
  const [measure, setMeasure] = useState<"first_reply" | "resolution">("first_reply");
  const lines: Series[] = (["average", "median", "p90"] as const).map((s) => ({
    name: t(`rep.stat.${s}`),
    values: minutes(`${measure}_${s}_seconds`),
    kind: "line",
  }));
  const levels = (report.thresholds ?? []).map((th) => ({
    name: th.level === 0 ? t("rep.level0") : th.after_minutes === null ? t("rep.level", { n: th.level }) : t("rep.level_after", { n: th.level, m: th.after_minutes }),
    values: num(`${measure}_level_${th.level}`),
    stack: "levels",
  }));
  return (
    <>
      <div className="row gap">
        <span className="switch" role="radiogroup" aria-label={t("rep.measure")}>
          {(["first_reply", "resolution"] as const).map((m) => (
            <label key={m} className="check">
              <input type="radio" name="measure" checked={measure === m} onChange={() => setMeasure(m)} data-testid={`measure-${m}`} />
              {t(`rep.measure.${m}`)}
            </label>
          ))}
        </span>
      </div>
      <div className="two">
        <Chart option={chartOption(periods, lines, { unit: t("rep.unit.minutes") })} testId="report-chart" label={t(`rep.measure.${measure}`)} height={230} />
        <Chart option={chartOption(periods, levels)} testId="report-chart-levels" label={t("rep.by_threshold")} height={230} />
      </div>
      {table}
    </>
  );
}

function Topics({ report, periods, table }: { report: Report; periods: string[]; table: ReactNode }) {
  const { t } = useI18n();
  const [dim, setDim] = useState<"labels" | "categories">("labels");
  const names = [...new Set(report.series.flatMap((r) => Object.keys((r[dim] as Record<string, number>) ?? {})))];
  const series: Series[] = names.map((n) => ({
    name: topicText(n, t),
    values: report.series.map((r) => ((r[dim] as Record<string, number>) ?? {})[n] ?? 0),
    stack: "topics",
  }));
  const top = report.top?.[dim] ?? [];
  return (
    <>
      <div className="row gap">
        <span className="switch" role="radiogroup" aria-label={t("rep.dimension")}>
          {(["labels", "categories"] as const).map((d) => (
            <label key={d} className="check">
              <input type="radio" name="dim" checked={dim === d} onChange={() => setDim(d)} data-testid={`dim-${d}`} />
              {t(`rep.dims.${d}`)}
            </label>
          ))}
        </span>
      </div>
      <div className="topics-grid">
        <Chart option={chartOption(periods, series)} testId="report-chart" label={t("rep.topics")} height={240} />
        <div>
          <h3>{t("rep.top_topics")}</h3>
          <table className="table" data-testid="top-topics">
            <thead>
              <tr>
                <th>{t("rep.col.topic")}</th>
                <th className="numcol">{t("rep.col.count")}</th>
                <th className="numcol">{t("rep.share")}</th>
              </tr>
            </thead>
            <tbody>
              {top.map((x) => (
                <tr key={x.topic}>
                  <td>{topicText(x.topic, t)}</td>
                  <td className="numcol">{x.count}</td>
                  <td className="numcol">{shareText(x.share)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </div>
      {table}
    </>
  );
}
