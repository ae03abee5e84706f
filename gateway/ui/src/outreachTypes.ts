// The shapes of proactive outreach (issue 20, OUT-6) as gateway/openapi.yaml documents them:
// contact lists and their CSV imports, custom field definitions, segments, campaigns and
// the unsubscribe (suppression) list.
import { useEffect, useState } from "react";
import { api } from "./api";

export type FieldType = "text" | "number" | "date";
export interface FieldDef {
  key: string;
  label: string;
  type: FieldType;
}
export interface ContactList {
  id: string;
  name: string;
  description: string;
  member_count: number;
  created_at: string;
  updated_at: string;
}
export interface Member {
  contact_id: string;
  name: string;
  address: string;
  time_zone: string;
  language: string;
  labels: string[];
  custom: Record<string, string>;
  added_at: string;
}
export interface Import {
  id: string;
  list_id: string;
  state: "running" | "done" | "failed";
  total_lines: number;
  processed: number;
  imported: number;
  failed: number;
  errors: { line: number; message: string }[];
  message?: string; // why a failed import failed (the server's words)
  created_at: string;
  finished_at: string | null;
}
export interface Condition {
  field: string;
  op: string;
  value: string;
}
export interface Segment {
  id: string;
  name: string;
  match: "all" | "any";
  conditions: Condition[];
  created_at: string;
  updated_at: string;
}
export type CampaignState = "draft" | "scheduled" | "running" | "paused" | "cancelled" | "completed";
export const TOTALS = ["recipients", "queued", "sent", "failed", "bounced", "replied", "unsubscribed", "suppressed"] as const;
export type Totals = Record<(typeof TOTALS)[number], number> & { pending?: number; cancelled?: number };
export interface Window {
  start: string;
  end: string;
  days: number[];
}
export interface Campaign {
  id: string;
  name: string;
  inbox_id: string;
  subject: string;
  body: string;
  language: string;
  audience: { list_id?: string; segment_id?: string };
  scheduled_at: string | null;
  window: Window | null;
  throttle_per_domain_per_minute: number | null;
  state: CampaignState;
  totals: Totals;
  created_by: string;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  finished_at: string | null;
}
export const RECIPIENT_STATES = [
  "pending",
  "queued",
  "sent",
  "failed",
  "bounced",
  "replied",
  "unsubscribed",
  "suppressed",
  "cancelled",
] as const;
export interface Recipient {
  id: string;
  contact_id: string;
  address: string;
  name: string;
  state: (typeof RECIPIENT_STATES)[number];
  not_before: string | null;
  sent_at: string | null;
  error: string;
  updated_at: string;
}
export interface Suppression {
  address: string;
  reason: "unsubscribed" | "bounced" | "manual";
  campaign_id: string | null;
  created_at: string;
}

/** The recipients done with (each counted in one state): all but those still to send. */
export function done(t: Totals): number {
  return Math.max(0, t.recipients - (t.pending ?? 0) - t.queued);
}

// The built-in fields a segment condition may name, with their kind (which operators fit).
export type CondKind = "text" | "number" | "date" | "set";
export const BUILTIN_FIELDS: { field: string; kind: CondKind }[] = [
  { field: "address", kind: "text" },
  { field: "domain", kind: "text" },
  { field: "name", kind: "text" },
  { field: "company", kind: "text" },
  { field: "time_zone", kind: "text" },
  { field: "language", kind: "text" },
  { field: "label", kind: "set" },
  { field: "list", kind: "set" },
  { field: "last_contact_at", kind: "date" },
  { field: "created_at", kind: "date" },
];
export const OPS: Record<CondKind, string[]> = {
  text: ["eq", "ne", "contains", "starts_with", "exists", "not_exists"],
  number: ["eq", "gt", "gte", "lt", "lte"],
  date: ["within_days", "not_within_days", "eq", "gt", "gte", "lt", "lte"],
  set: ["has", "not_has"],
};
export const NO_VALUE = new Set(["exists", "not_exists"]);

export function kindOf(field: string, defs: FieldDef[]): CondKind {
  if (field.startsWith("custom.")) return defs.find((d) => `custom.${d.key}` === field)?.type ?? "text";
  return BUILTIN_FIELDS.find((f) => f.field === field)?.kind ?? "text";
}

/** The operators a field takes (as tickets checks them): a custom number or date and the
 * last contact may also be set or not. */
export function opsFor(field: string, defs: FieldDef[]): string[] {
  const kind = kindOf(field, defs);
  const optional = field === "last_contact_at" || (field.startsWith("custom.") && kind !== "text");
  return optional ? [...OPS[kind], "exists", "not_exists"] : OPS[kind];
}

/** Whether every condition that needs a value has one (else nothing is counted yet). */
export const complete = (conds: Condition[]) => conds.every((c) => NO_VALUE.has(c.op) || c.value.trim() !== "");

/** The custom field definitions (any operator may read them); [] until read. */
export function useFieldDefs(): [FieldDef[], () => void] {
  const [defs, setDefs] = useState<FieldDef[]>([]);
  const [n, setN] = useState(0);
  useEffect(() => {
    void api
      .get<{ fields: FieldDef[] }>("/contact-fields")
      .then((r) => setDefs(r.fields))
      .catch(() => setDefs([]));
  }, [n]);
  return [defs, () => setN((x) => x + 1)];
}

/** Every contact list (for choosing an audience, a `list` condition). */
export function useLists(): ContactList[] {
  const [lists, setLists] = useState<ContactList[]>([]);
  useEffect(() => {
    void api
      .get<{ lists: ContactList[] }>("/contact-lists")
      .then((r) => setLists(r.lists))
      .catch(() => setLists([]));
  }, []);
  return lists;
}
