// The table under a report's chart: exactly the report's `table` — the rows the CSV download
// holds, with the same numbers — in the UI's words: periods in the app's date format,
// durations in minutes or hours, the totals row last.
import { Cell, columnLabel, durationText, Granularity, isSeconds, isShare, periodText, shareText } from "./reportTypes";
import { DICTS, Key, useI18n } from "./i18n";

const has = (k: string): k is Key => k in DICTS.en;
// the instants of a period are in its label already; ids are for machines
const HIDDEN = new Set(["start", "end", "operator_id", "id"]);

export function ReportTable({
  columns,
  rows,
  granularity,
  tz,
  testId = "report-table",
}: {
  columns: string[];
  rows: Cell[][];
  granularity: Granularity;
  tz: string;
  testId?: string;
}) {
  const { t, lang } = useI18n();
  const shown = columns.map((c, i) => [c, i] as const).filter(([c]) => !HIDDEN.has(c));
  const startAt = columns.indexOf("start");
  const cell = (col: string, v: Cell, row: Cell[]): string => {
    if (col === "period") return periodText({ period: String(v), start: String(row[startAt] ?? "") }, granularity, tz, lang, t);
    if (col === "operator" && row[0] === "total") return t("rep.total");
    if (isSeconds(col)) return durationText(v, t);
    if (isShare(col)) return typeof v === "number" ? shareText(v) : "—";
    if (col === "name" && v === null) return t("rep.nobody"); // satisfaction: resolved by nobody
    if (col === "dimension") return has(`rep.dim.${v}`) ? t(`rep.dim.${v}` as Key) : String(v ?? "");
    if (col === "topic") return topicText(String(v ?? ""), t);
    if (v === null) return "—";
    return String(v);
  };
  if (rows.length === 0) return <p className="muted" data-testid={`${testId}-empty`}>{t("rep.empty")}</p>;
  return (
    <div className="table-scroll">
      <table className="table report-table" data-testid={testId}>
        <thead>
          <tr>
            {shown.map(([c]) => (
              <th key={c} className={["period", "operator", "topic", "dimension", "name"].includes(c) ? "" : "numcol"}>{columnLabel(c, t, has)}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r, n) => {
            const total = r[0] === "total" || r[columns.indexOf("period")] === "total";
            return (
              <tr key={n} className={total ? "total" : ""} data-testid="report-row" data-period={String(r[0] ?? "")}>
                {shown.map(([c, i]) => (
                  <td key={c} className={typeof r[i] === "number" || isSeconds(c) ? "numcol" : ""} data-col={c}>
                    {cell(c, r[i], r)}
                  </td>
                ))}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** A label or category; the API's `(other)` and `(none)` in the UI's words. */
export function topicText(v: string, t: (k: Key) => string): string {
  if (v === "(other)") return t("rep.topic_other");
  if (v === "(none)") return t("rep.topic_none");
  return v;
}
