// The satisfaction report (issue 20, OUT-5): the average rating per period (a line on the
// 1–5 scale) beside the surveys sent and answered (bars), then the report's table — the
// periods, each operator who resolved surveyed tickets and each inbox, the totals last —
// which is what the CSV holds; then each additional question's answers and average (a
// line per question), and the customers' comments of the range, newest first, a page at a
// time (GET /reports/satisfaction/comments, the same filters).
import { ReactNode, useCallback, useEffect, useState } from "react";
import { api } from "./api";
import { Chart, chartOption } from "./Chart";
import { errorText } from "./errors";
import { useFormat } from "./format";
import { useI18n } from "./i18n";
import { Cell, QuestionRow, Report } from "./reportTypes";

interface Comment {
  survey_id: string;
  ticket_id: string;
  ticket_number: number;
  inbox: string;
  rating: number;
  comment: string;
  operator: string | null;
  answered_at: string;
}

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
      <Questions rows={report.per_question ?? []} periods={periods} />
      <Comments report={report} />
    </>
  );
}

const shown = (v: Cell | undefined) => (v === null || v === undefined ? "—" : String(v));

function Questions({ rows, periods }: { rows: QuestionRow[]; periods: string[] }) {
  const { t, lang } = useI18n();
  const text = (q: QuestionRow) => (lang === "ja" ? q.question_ja : q.question_en) || q.question_id;
  if (!rows.length) return null;
  const option = chartOption(
    periods,
    rows.map((q) => ({ name: text(q), values: q.series.map((p) => p.average_rating), kind: "line" as const })),
    { unit: "1–5" },
  );
  return (
    <section data-testid="sat-questions">
      <h2>{t("sat.questions")}</h2>
      <Chart option={option} testId="sat-questions-chart" label={t("sat.questions_chart")} height={230} />
      <div className="table-scroll">
        <table className="table report-table">
          <thead>
            <tr>
              <th scope="col">{t("sat.question")}</th>
              <th scope="col">{t("rep.col.surveys_answered")}</th>
              <th scope="col">{t("rep.col.average_rating")}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((q) => (
              <tr key={q.question_id} data-testid="sat-question" data-id={q.question_id}>
                <th scope="row">{text(q)}</th>
                <td data-testid="sat-question-answered">{q.answered}</td>
                <td data-testid="sat-question-average">{shown(q.average_rating)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function Comments({ report }: { report: Report }) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const [items, setItems] = useState<Comment[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState("");
  const load = useCallback(
    async (cursor: string | null) => {
      const query = { from: report.from, to: report.to, tz: report.tz, inbox_id: report.inbox_id ?? undefined, cursor: cursor ?? undefined };
      const page = await api.get<{ items: Comment[]; next: string | null }>("/reports/satisfaction/comments", query);
      return page;
    },
    // a refreshed report reads its comments again
    [report],
  );
  useEffect(() => {
    let gone = false;
    setItems(null);
    setError("");
    load(null)
      .then((p) => !gone && (setItems(p.items), setNext(p.next)))
      .catch((e) => !gone && (setItems([]), setError(errorText(e, t, "report"))));
    return () => {
      gone = true;
    };
  }, [load, t]);
  const more = async () => {
    try {
      const p = await load(next);
      setItems((old) => [...(old ?? []), ...p.items]);
      setNext(p.next);
    } catch (e) {
      setError(errorText(e, t, "report"));
    }
  };
  return (
    <section data-testid="sat-comments">
      <h2>{t("sat.comments")}</h2>
      {error && <p className="error" role="alert">{error}</p>}
      {items === null && <p className="muted">{t("list.loading")}</p>}
      {items?.length === 0 && !error && <p className="muted" data-testid="sat-no-comments">{t("sat.no_comments")}</p>}
      {!!items?.length && (
        <ul className="comments">
          {items.map((c) => (
            <li key={c.survey_id} className="card" data-testid="sat-comment">
              <p className="muted small">
                {t("sat.comment_meta", {
                  at: dateTime(c.answered_at),
                  n: c.ticket_number,
                  rating: c.rating,
                  operator: c.operator ?? t("rep.nobody"),
                  inbox: c.inbox,
                })}{" "}
                <a href={`#/tickets/${c.ticket_id}`}>{t("sat.open_ticket")}</a>
              </p>
              <p className="pre" data-testid="sat-comment-text">{c.comment}</p>
            </li>
          ))}
        </ul>
      )}
      {next && (
        <button type="button" onClick={() => void more()} data-testid="sat-comments-more">
          {t("sat.more")}
        </button>
      )}
    </section>
  );
}
