// The satisfaction report (issue 20, OUT-5): the average rating per period (a line on the
// 1–5 scale) beside the surveys sent and answered (bars), then the report's table — the
// periods, each operator who resolved surveyed tickets and each inbox, the totals last —
// which is what the CSV holds.
import { ReactNode } from "react";
import { Chart, chartOption } from "./Chart";
import { useI18n } from "./i18n";
import { Report } from "./reportTypes";

export function Satisfaction({
  report,
  periods,
  num,
  totals,
  table,
}: {
  report: Report;
  periods: string[];
  num: (k: string) => (number | null)[];
  totals: ReactNode;
  table: ReactNode;
}) {
  const { t } = useI18n();
  const average = chartOption(periods, [{ name: t("rep.col.average_rating"), values: num("average_rating"), kind: "line" }], {
    unit: "1–5",
  });
  const counts = chartOption(periods, [
    { name: t("rep.col.surveys_sent"), values: num("surveys_sent") },
    { name: t("rep.col.surveys_answered"), values: num("surveys_answered") },
  ]);
  return (
    <>
      {totals}
      <div className="two" data-testid="satisfaction" data-answered={String(report.totals.surveys_answered ?? 0)}>
        <Chart option={average} testId="report-chart" label={t("rep.sat.average_chart")} height={230} />
        <Chart option={counts} testId="report-chart-counts" label={t("rep.sat.counts_chart")} height={230} />
      </div>
      {table}
    </>
  );
}
