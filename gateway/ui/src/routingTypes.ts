// Routing (issue 18): the shapes of the routing routes of gateway/openapi.yaml — rules and
// their dry run, calendars and SLA policies, inbox assignment, operators' routing
// profiles and presence — and the small helpers the routing screens share: a server
// field path (`slots[1].end`) in the UI's words.
import { ApiError, Priority, Status } from "./api";
import { errorText } from "./errors";
import { DICTS, Key, T } from "./i18n";

// ---- calendars and SLA (RTE-4) ---------------------------------------------------------

export const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface Slot {
  weekday: Weekday;
  start: string; // HH:MM
  end: string; // HH:MM or 24:00
  crosses_midnight: boolean;
}
export interface Holiday {
  date: string; // YYYY-MM-DD
  name: string;
  yearly: boolean;
}
export interface Calendar {
  id?: string;
  name: string;
  time_zone: string;
  public_holidays: string; // "JP", "" for none
  slots: Slot[];
  holidays: Holiday[];
  version?: number;
}
export interface PublicHoliday {
  date: string;
  name: string;
}

export type Warning = { before_minutes: number } | { at_percent: number } | null;
export interface SlaPolicy {
  id?: string;
  name: string;
  position?: number;
  enabled: boolean;
  inbox_ids: string[];
  categories: string[];
  priorities: Priority[];
  calendar_id: string | null;
  first_response_minutes: number | null;
  next_response_minutes: number | null;
  resolution_minutes: number | null;
  pause_statuses: Status[];
  warning: Warning;
  version?: number;
}

export type SlaState = "ok" | "warning" | "breached" | "paused" | "met" | "none";
export interface SlaTarget {
  kind: "first_response" | "next_response" | "resolution";
  state: SlaState;
  started_at: string | null;
  due_at: string | null;
  warning_at: string | null;
  met_at: string | null;
  remaining_minutes: number | null;
}
export interface TicketSla {
  ticket_id: string;
  policy: { id: string; name: string } | null;
  calendar_id: string | null;
  state: SlaState;
  paused: boolean;
  next_due_at: string | null;
  targets: SlaTarget[];
}

// ---- errors at their place ---------------------------------------------------------------

const has = (key: string): key is Key => key in DICTS.en;

/** A server field path in the form's words: `slots[1].end` → "Opening hours 2 · Ends". */
export function pathWords(field: string, t: T): string {
  const parts: string[] = [];
  // indexes as `[1]` (rules, sla) or `.1` (assignment)
  for (const m of field.matchAll(/([A-Za-z_]+)|\[(\d+)\]|(?<=^|\.)(\d+)(?=\.|$)/g)) {
    const index = m[2] ?? m[3];
    if (index !== undefined) {
      if (parts.length) parts[parts.length - 1] += ` ${Number(index) + 1}`;
    } else parts.push(has(`rf.${m[1]}`) ? t(`rf.${m[1]}` as Key) : m[1]);
  }
  return parts.join(" · ");
}

/** What a form shows for a refusal: the text (with the field in the UI's words) and the
 * field path, so the row it is about can be marked. */
export function formError(e: unknown, t: T): { text: string; field: string } {
  const field = e instanceof ApiError ? (e.field ?? "") : "";
  // a refusal with words of its own (a version saved meanwhile) says them as they are
  if (e instanceof ApiError && has(`error.${e.code}.${field}`)) return { text: errorText(e, t), field };
  const text = errorText(e instanceof ApiError && field ? new ApiError(e.status, e.code, e.message, undefined, e.body) : e, t);
  return { text: field ? t("rt.field", { field: pathWords(field, t), text }) : text, field };
}

/** Whether a refusal's field is about `prefix` (`slots[1]`, or the field itself). */
export const about = (err: { field: string } | null, prefix: string) =>
  !!err && (err.field === prefix || err.field.startsWith(`${prefix}.`) || err.field.startsWith(`${prefix}[`));
