// The shapes of the Reports API (gateway/openapi.yaml: /reports/{report}, /reports/live-*,
// /exports) and how their figures read: periods in the report's zone in the app's one date
// format (format.ts), durations in minutes and hours.
import { dateText, dateTimeText, wallAt } from "./format";
import { Key, T } from "./i18n";

export type ReportName = "volume" | "response_times" | "operators" | "topics" | "satisfaction";
export const REPORTS: ReportName[] = ["volume", "response_times", "operators", "topics", "satisfaction"];
export type Granularity = "hour" | "day" | "week" | "month";
export const GRANULARITIES: Granularity[] = ["hour", "day", "week", "month"];
export type Basis = "wall" | "business";

export type Cell = string | number | null;

export interface PeriodRow {
  period: string;
  start: string;
  end: string;
  [k: string]: unknown;
}

export interface Report {
  report: ReportName;
  from: string;
  to: string;
  granularity: Granularity;
  tz: string;
  basis: Basis;
  inbox_id: string | null;
  inboxes: { id: string; name: string }[];
  series: PeriodRow[];
  totals: Record<string, Cell>;
  table: { columns: string[]; rows: Cell[][] };
  thresholds?: { level: number; after_minutes: number | null; color: string | null }[];
  top?: { labels: Topic[]; categories: Topic[] };
  per_operator?: Record<string, Cell>[]; // satisfaction: the table's operator rows
  per_inbox?: Record<string, Cell>[]; // … and its inbox rows
  per_question?: QuestionRow[]; // … and each additional question answered (issue 20)
}

/** The satisfaction report's additional question: its texts as last answered, its totals
 * and its series. */
export interface QuestionRow {
  question_id: string;
  question_ja: string;
  question_en: string;
  answered: number;
  average_rating: number | null;
  series: { period: string; answered: number; average_rating: number | null }[];
}

export interface Topic {
  topic: string;
  count: number;
  share: number;
}

export interface ReportQuery {
  from: string;
  to: string;
  granularity: Granularity;
  tz: string;
  inbox_id: string;
  basis: Basis;
}

export interface LateLevel {
  level: number;
  after_minutes: number;
  color: string;
  count: number;
}

export interface QueueInbox {
  inbox_id: string;
  name: string;
  waiting: number;
  oldest_waiting_since: string | null;
  oldest_wait_seconds: number | null;
  late: LateLevel[];
  late_total: number;
  near_breach: number;
  breached: number;
}

export interface LiveQueue {
  at: string;
  inbox_id: string | null;
  inboxes: QueueInbox[];
  totals: Omit<QueueInbox, "inbox_id" | "name" | "late">;
}

export interface LiveAssignment {
  at: string;
  inbox_id: string | null;
  inboxes: { id: string; name: string }[];
  assignees: { operator_id: string; display_name: string; open: number; pending: number }[];
  unassigned: { open: number; pending: number };
  totals: { open: number; pending: number };
}

export type ExportKind = "tickets_csv" | "messages_csv" | "eml_zip" | "mbox" | "report_csv";
export const EXPORT_KINDS: ExportKind[] = ["tickets_csv", "messages_csv", "report_csv", "eml_zip", "mbox"];
export const EXPORT_COLUMNS: Partial<Record<ExportKind, string[]>> = {
  tickets_csv: [
    "id", "number", "subject", "status", "priority", "inbox_id", "inbox", "from_name", "from_address", "contact_id",
    "assignee_id", "assignee", "labels", "category", "message_count", "received_at", "last_message_at", "closed_at",
    "updated_at",
  ],
  messages_csv: [
    "id", "ticket_id", "ticket_number", "inbox_id", "inbox", "channel", "received_at", "from_name", "from_address", "to",
    "cc", "subject", "rfc822_message_id", "size_bytes", "has_attachments",
  ],
};

export interface Export {
  id: string;
  kind: ExportKind;
  state: "queued" | "running" | "done" | "failed";
  done: number;
  total: number;
  params: Record<string, unknown>;
  created_at: string;
  finished_at: string | null;
  filename: string;
  size_bytes: number;
  error: string | null;
  download: string | null;
}

const MONTHS_EN = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** A period of a report as a person reads it, in the report's zone: an hour, a day, the
 * week from its (first) day, a month. */
export function periodText(row: { period: string; start: string }, g: Granularity, tz: string, lang: "en" | "ja", t: T): string {
  if (row.period === "total") return t("rep.total");
  const ms = Date.parse(row.start);
  if (Number.isNaN(ms)) return row.period;
  let w;
  try {
    w = wallAt(ms, tz);
  } catch {
    w = wallAt(ms, "UTC");
  }
  if (g === "hour") return dateTimeText(w, lang);
  if (g === "week") return t("rep.week_from", { date: dateText(w, lang) });
  if (g === "month") return lang === "ja" ? `${w.year}年${w.month}月` : `${MONTHS_EN[w.month - 1]} ${w.year}`;
  return dateText(w, lang);
}

/** A duration in seconds as minutes (under 2 hours) or hours with one decimal. */
export function durationText(s: Cell, t: T): string {
  if (s === null || s === "" || typeof s !== "number") return "—";
  if (s < 120 * 60) return t("rep.minutes", { n: (s / 60).toFixed(1) });
  return t("rep.hours", { n: (s / 3600).toFixed(1) });
}

/** A column of a report's table, in the UI's words (the CSV keeps the API's names). */
export function columnLabel(col: string, t: T, has: (k: string) => k is Key): string {
  const level = /^(first_reply|resolution)_level_(\d+)$/.exec(col);
  if (level) return t("rep.col.level", { what: t(`rep.col.${level[1]}_count` as Key), n: level[2] });
  const key = `rep.col.${col}`;
  return has(key) ? t(key) : col;
}

export const isSeconds = (col: string) => col.endsWith("_seconds");
export const isShare = (col: string) => col === "response_rate";

export function shareText(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}
