// The shapes of the administration screens (Admin.tsx): a section is one resource of the
// API — its rows in a table (AdminTable.tsx), optionally filtered and paged, and a form.
// The sections themselves are in adminSections.tsx (settings) and adminLogs.tsx (logs).
import { ReactNode } from "react";
import { api } from "./api";
import { LiveEvent } from "./live";
import { Key, T } from "./i18n";

export type Row = Record<string, unknown>;
export type Tested = { ok: boolean; detail: string; elapsed_ms: number };
export type Option = { value: string; label: string };
export type Kind =
  | "text"
  | "textarea"
  | "number"
  | "bool"
  | "list"
  | "select"
  | "multi"
  | "datetime"
  | "password"
  | "file";
export type Query = Record<string, string>;
export type Page = { rows: Row[]; next: string | null };

export interface Lookups {
  inboxes: Option[];
  operators: Option[];
  roles: Option[];
  permissions: Option[];
  folders: Option[];
  templates: Option[];
}

/** What a section's cells and actions use: the words and the one date format. */
export interface Ctx {
  t: T;
  dateTime: (iso: unknown) => string;
  may: (permission: string) => boolean;
}

export interface Field {
  name: string;
  label: Key;
  kind: Kind;
  options?: (lookups: Lookups, t: T) => Option[];
  createOnly?: boolean;
  optional?: boolean; // "" is not sent
  initial?: unknown; // the value of a new row's form
  from?: (r: Row) => unknown; // the form's value of a stored row, where not r[name]
  keepHint?: Key; // shown in an empty secret field of a stored row (left empty, kept)
  words?: boolean; // offers the reserved words (CMP-2) to insert
}

/** A filter above a table: its value goes into the query under `name`. */
export interface Filter {
  name: string;
  label: Key;
  kind: "text" | "select" | "bool" | "day_from" | "day_to";
  options?: (lookups: Lookups, t: T) => Option[];
  initial?: string;
}

export interface Column {
  label: Key;
  value: (r: Row, l: Lookups) => string;
  mono?: boolean; // identifiers and addresses, as they are
}

export interface Section {
  key: string;
  title: Key;
  permission: string;
  help?: Key; // one line under the title
  load: (query: Query, cursor: string | null) => Promise<Page>;
  columns: Column[];
  filters?: Filter[];
  csv?: { permission: string; href: (query: Query) => string };
  fields: Field[];
  create?: (body: Row) => Promise<unknown>;
  update?: (row: Row, body: Row) => Promise<unknown>;
  remove?: (row: Row) => Promise<unknown>;
  removeLabel?: Key; // the remove button's words, where not "Delete"
  id: (r: Row) => string;
  actions?: (r: Row, ctx: Ctx, say: (s: string) => void, reload: () => void) => ReactNode;
  // a connection test: of the form's settings (not saved yet), or of a stored row
  test?: (body: Row | null, row: Row | null) => Promise<Tested>;
  // a connection test of a stored row's edited settings (with its stored secret)
  testEdit?: (row: Row, body: Row) => Promise<Tested>;
  // a form of its own instead of the fields' (nested values: approval policies); it
  // saves, then calls done(true)
  editor?: (row: Row | "new", lookups: Lookups, done: (saved: boolean) => void) => ReactNode;
  removable?: (r: Row) => boolean; // which rows may be removed, where not all
  editOnly?: boolean; // rows are edited, never created here (an inbox's assignment)
  single?: boolean; // one settings object, edited in place
  refreshS?: number; // the rows carry a live state: reloaded this often while shown
  // a screen of its own instead of the table and form (the ordered rules list, issue 18)
  page?: (ctx: Ctx, lookups: Lookups) => ReactNode;
  // the rows changed in place by a push of the live socket (others' presence, issue 18);
  // null: the push is not about them
  live?: (rows: Row[], e: LiveEvent) => Row[] | null;
}

/** A list answer that is not paged, as one page. */
export const items = async (path: string, query?: Query): Promise<Row[]> =>
  (await api.get<{ items: Row[] }>(path, query)).items;
export const whole = async (rows: Promise<Row[]>): Promise<Page> => ({ rows: await rows, next: null });
export const joined = (v: unknown) => (Array.isArray(v) ? v.join(", ") : "");
export const str = (v: unknown) => (v === null || v === undefined ? "" : String(v));
/** Ids as their names; ids that name nothing known (and null) are left out. */
export const names = (ids: unknown, opts: Option[]) =>
  (Array.isArray(ids) ? ids : [])
    .filter((i) => i !== null && i !== undefined && i !== "")
    .map((i) => opts.find((o) => o.value === i)?.label ?? String(i))
    .join(", ");
export const enumOf = (...values: string[]) => () => values.map((v) => ({ value: v, label: v }));
export const withNone = (label: string, opts: Option[]) => [{ value: "", label }, ...opts];
/** Values whose words are `${prefix}${value}` keys. */
export const translated =
  (prefix: string, ...values: string[]) =>
  (_l: Lookups, t: T) =>
    values.map((v) => ({ value: v, label: t(`${prefix}${v}` as Key) }));
