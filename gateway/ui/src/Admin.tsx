import { FormEvent, ReactNode, useCallback, useEffect, useMemo, useState } from "react";
import { api, messageOf } from "./api";
import { Session } from "./App";
import { Key, T, useI18n } from "./i18n";

// Administration (issue 8, item 6): one generic screen per resource of the API — a table
// and a form — each shown only with the permission its routes need (the server checks it
// again). Values are sent as the OpenAPI schemas name them.

type Row = Record<string, unknown>;
type Tested = { ok: boolean; detail: string; elapsed_ms: number };
type Option = { value: string; label: string };
type Kind = "text" | "textarea" | "number" | "bool" | "list" | "select" | "multi" | "datetime" | "password";

interface Field {
  name: string;
  label: Key;
  kind: Kind;
  options?: (lookups: Lookups) => Option[];
  createOnly?: boolean;
  optional?: boolean; // "" is not sent
  initial?: unknown; // the value of a new row's form
  from?: (r: Row) => unknown; // the form's value of a stored row, where not r[name]
  keepHint?: Key; // shown in an empty secret field of a stored row (left empty, kept)
  words?: boolean; // offers the reserved words (CMP-2) to insert
}

// The reserved words composition fills in (services/composition/reserved.py WORDS; a
// unit test keeps the two lists equal).
const RESERVED_WORDS = [
  "today",
  "now",
  "customer.name",
  "customer.address",
  "customer.company",
  "operator.name",
  "operator.address",
  "ticket.number",
  "ticket.subject",
  "inbox.name",
  "inbox.address",
  "original.subject",
  "original.from",
  "original.date",
] as const;

/** Buttons that insert `{{word}}` at the cursor of the input `target`. */
function WordPicker({ target, value, set }: { target: string; value: string; set: (v: string) => void }) {
  const { t } = useI18n();
  const insert = (word: string) => {
    const el = document.getElementById(target) as HTMLInputElement | HTMLTextAreaElement | null;
    const text = `{{${word}}}`;
    const at = el?.selectionStart ?? value.length;
    const end = el?.selectionEnd ?? at;
    set(value.slice(0, at) + text + value.slice(end));
    window.requestAnimationFrame(() => {
      el?.focus();
      el?.setSelectionRange(at + text.length, at + text.length);
    });
  };
  return (
    <div className="words" data-testid={`words-${target}`}>
      <span className="muted">{t("admin.words")}</span>
      {RESERVED_WORDS.map((w) => (
        <button
          key={w}
          type="button"
          className="chip"
          title={t(`word.${w}` as Key)}
          onMouseDown={(e) => e.preventDefault()}
          onClick={() => insert(w)}
        >
          {`{{${w}}}`}
        </button>
      ))}
    </div>
  );
}

interface Section {
  key: string;
  title: Key;
  permission: string;
  load: () => Promise<Row[]>;
  columns: { label: Key; value: (r: Row, l: Lookups) => string }[];
  fields: Field[];
  create?: (body: Row) => Promise<unknown>;
  update?: (row: Row, body: Row) => Promise<unknown>;
  remove?: (row: Row) => Promise<unknown>;
  id: (r: Row) => string;
  actions?: (r: Row, t: T, say: (s: string) => void) => ReactNode;
  // a connection test: of the form's settings (not saved yet), or of a stored row
  test?: (body: Row | null, row: Row | null) => Promise<Tested>;
  // a connection test of a stored row's edited settings (with its stored secret)
  testEdit?: (row: Row, body: Row) => Promise<Tested>;
  single?: boolean; // one settings object, edited in place
  refreshS?: number; // the rows carry a live state: reloaded this often while shown
}

interface Lookups {
  inboxes: Option[];
  operators: Option[];
  roles: Option[];
  permissions: Option[];
  folders: Option[];
  templates: Option[];
}

const items = async (path: string, query?: Record<string, string>) => (await api.get<{ items: Row[] }>(path, query)).items;
const joined = (v: unknown) => (Array.isArray(v) ? v.join(", ") : "");
const str = (v: unknown) => (v === null || v === undefined ? "" : String(v));
const names = (ids: unknown, opts: Option[]) =>
  (Array.isArray(ids) ? ids : []).map((i) => opts.find((o) => o.value === i)?.label ?? String(i)).join(", ");
const enumOf = (...values: string[]) => () => values.map((v) => ({ value: v, label: v }));
const withNone = (label: string, opts: Option[]) => [{ value: "", label }, ...opts];
const local = (iso: unknown) => (iso ? new Date(String(iso)).toISOString().slice(0, 16) : "");

function sections(t: T): Section[] {
  return [
    {
      key: "operators",
      title: "admin.operators",
      permission: "manage_operators",
      load: () => items("/operators", { include_inactive: "true" }),
      id: (r) => str(r.id),
      columns: [
        { label: "admin.f.display_name", value: (r) => str(r.display_name) },
        { label: "admin.f.login", value: (r) => str(r.login) },
        { label: "admin.f.roles", value: (r) => joined(r.roles) },
        { label: "admin.f.inbox_ids", value: (r, l) => names(r.inbox_ids, l.inboxes) },
        { label: "admin.f.active", value: (r) => (r.active ? "✓" : "—") },
      ],
      fields: [
        { name: "login", label: "admin.f.login", kind: "text", createOnly: true },
        { name: "display_name", label: "admin.f.display_name", kind: "text" },
        { name: "roles", label: "admin.f.roles", kind: "multi", options: (l) => l.roles },
        { name: "inbox_ids", label: "admin.f.inbox_ids", kind: "multi", options: (l) => l.inboxes },
        { name: "language", label: "admin.f.language", kind: "select", options: enumOf("ja", "en"), optional: true },
        { name: "time_zone", label: "admin.f.time_zone", kind: "text", optional: true },
        { name: "ip_allowlist", label: "admin.f.ip_allowlist", kind: "list" },
        { name: "active", label: "admin.f.active", kind: "bool" },
      ],
      create: (b) => api.post("/operators", b),
      update: (r, b) => api.patch(`/operators/${r.id}`, b),
      actions: (r, t, say) => (
        <button
          className="small"
          onClick={async () => {
            try {
              const out = await api.post<{ temporary_password: string | null }>(`/operators/${r.id}/password`, {});
              say(t("admin.temporary", { p: out.temporary_password ?? "" }));
            } catch (e) {
              say(t("common.error", { m: messageOf(e) }));
            }
          }}
        >
          {t("admin.reset_password")}
        </button>
      ),
    },
    {
      key: "inboxes",
      title: "admin.inboxes",
      permission: "manage_inboxes",
      load: () => items("/inboxes", { all: "true" }),
      id: (r) => str(r.id),
      columns: [
        { label: "admin.f.name", value: (r) => str(r.name) },
        { label: "admin.f.addresses", value: (r) => joined(r.addresses) },
        { label: "admin.f.member_ids", value: (r, l) => names(r.member_ids, l.operators) },
      ],
      fields: [
        { name: "name", label: "admin.f.name", kind: "text" },
        { name: "addresses", label: "admin.f.addresses", kind: "list" },
        { name: "member_ids", label: "admin.f.member_ids", kind: "multi", options: (l) => l.operators },
      ],
      create: (b) => api.post("/inboxes", b),
      update: (r, b) => api.patch(`/inboxes/${r.id}`, b),
    },
    {
      key: "thresholds",
      title: "admin.thresholds",
      permission: "manage_inboxes",
      load: async () => {
        const inboxes = await items("/inboxes", { all: "true" });
        return Promise.all(
          inboxes.map(async (i) => ({
            ...(await api.get<Row>(`/inboxes/${i.id}/settings`)),
            name: i.name,
          })),
        );
      },
      id: (r) => str(r.inbox_id),
      columns: [
        { label: "admin.f.name", value: (r) => str(r.name) },
        {
          label: "admin.f.thresholds",
          value: (r) => ((r.thresholds ?? []) as { after_minutes: number; color: string }[]).map((x) => `${x.after_minutes}m ${x.color}`).join(", "),
        },
        { label: "admin.f.new_ticket_after_days", value: (r) => str(r.new_ticket_after_days) },
      ],
      fields: [
        { name: "thresholds", label: "admin.f.thresholds", kind: "list" },
        { name: "new_ticket_after_days", label: "admin.f.new_ticket_after_days", kind: "number" },
      ],
      update: (r, b) =>
        api.put(`/inboxes/${r.inbox_id}/settings`, {
          new_ticket_after_days: b.new_ticket_after_days,
          thresholds: (b.thresholds as string[]).map((line) => {
            const [m, c] = line.replace(/m\b/, "").split(/\s+/);
            return { after_minutes: Number(m), color: c };
          }),
        }),
    },
    {
      key: "roles",
      title: "admin.roles",
      permission: "manage_operators",
      load: () => items("/roles"),
      id: (r) => str(r.name),
      columns: [
        { label: "admin.f.name", value: (r) => str(r.name) },
        { label: "admin.f.description", value: (r) => str(r.description) },
        { label: "admin.f.permissions", value: (r) => joined(r.permissions) },
      ],
      fields: [
        { name: "name", label: "admin.f.name", kind: "text", createOnly: true },
        { name: "description", label: "admin.f.description", kind: "text" },
        { name: "permissions", label: "admin.f.permissions", kind: "multi", options: (l) => l.permissions },
      ],
      create: (b) => api.put(`/roles/${encodeURIComponent(str(b.name))}`, { description: b.description, permissions: b.permissions }),
      update: (r, b) => api.put(`/roles/${encodeURIComponent(str(r.name))}`, { description: b.description, permissions: b.permissions }),
      remove: (r) => api.del(`/roles/${encodeURIComponent(str(r.name))}`),
    },
    {
      key: "security",
      title: "admin.security",
      permission: "manage_operators",
      single: true,
      load: async () => [await api.get<Row>("/tenant/settings")],
      id: () => "tenant",
      columns: [],
      fields: [
        { name: "time_zone", label: "admin.f.time_zone", kind: "text" },
        { name: "password_min_length", label: "admin.f.password_min_length", kind: "number" },
        { name: "password_min_classes", label: "admin.f.password_min_classes", kind: "number" },
        { name: "password_max_age_days", label: "admin.f.password_max_age_days", kind: "number" },
        { name: "ip_allowlist", label: "admin.f.ip_allowlist", kind: "list" },
      ],
      update: (_r, b) => api.patch("/tenant/settings", b),
    },
    {
      key: "templates",
      title: "admin.templates",
      permission: "manage_templates",
      load: () => items("/templates"),
      id: (r) => str(r.id),
      columns: [
        { label: "admin.f.name", value: (r) => str(r.name) },
        { label: "admin.f.kind", value: (r) => str(r.kind) },
        { label: "admin.f.folder_id", value: (r, l) => names([r.folder_id], l.folders) },
        { label: "admin.f.keywords", value: (r) => joined(r.keywords) },
      ],
      fields: [
        { name: "kind", label: "admin.f.kind", kind: "select", options: enumOf("template", "phrase") },
        { name: "name", label: "admin.f.name", kind: "text" },
        { name: "folder_id", label: "admin.f.folder_id", kind: "select", options: (l) => withNone("—", l.folders), optional: true },
        { name: "subject", label: "admin.f.subject", kind: "text", words: true },
        { name: "body_text", label: "admin.f.body_text", kind: "textarea", words: true },
        { name: "keywords", label: "admin.f.keywords", kind: "list" },
        { name: "inbox_ids", label: "admin.f.inbox_ids", kind: "multi", options: (l) => l.inboxes },
      ],
      create: (b) => api.post("/templates", b),
      update: (r, b) => api.put(`/templates/${r.id}`, { ...b, expected_version: r.version }),
      remove: (r) => api.del(`/templates/${r.id}`),
    },
    {
      key: "folders",
      title: "admin.folders",
      permission: "manage_templates",
      load: () => items("/template-folders"),
      id: (r) => str(r.id),
      columns: [
        { label: "admin.f.name", value: (r) => str(r.name) },
        { label: "admin.f.template_count", value: (r) => str(r.template_count) },
      ],
      fields: [{ name: "name", label: "admin.f.name", kind: "text" }],
      create: (b) => api.post("/template-folders", b),
      update: (r, b) => api.patch(`/template-folders/${r.id}`, b),
      remove: (r) => api.del(`/template-folders/${r.id}`),
    },
    {
      key: "signatures",
      title: "admin.signatures",
      permission: "manage_templates",
      load: () => items("/signatures"),
      id: (r) => str(r.id),
      columns: [
        { label: "admin.f.inbox_id", value: (r, l) => (r.inbox_id ? names([r.inbox_id], l.inboxes) : t("admin.default")) },
        { label: "admin.f.name", value: (r) => str(r.name) },
        { label: "admin.f.body_text", value: (r) => str(r.body_text).slice(0, 60) },
      ],
      fields: [
        { name: "inbox_id", label: "admin.f.inbox_id", kind: "select", options: (l) => withNone(t("admin.default"), l.inboxes), optional: true },
        { name: "name", label: "admin.f.name", kind: "text" },
        { name: "body_text", label: "admin.f.body_text", kind: "textarea", words: true },
      ],
      create: (b) => api.put("/signatures", b),
      update: (_r, b) => api.put("/signatures", b),
      remove: (r) => api.del(`/signatures/${r.id}`),
    },
    {
      key: "blocklist",
      title: "admin.blocklist",
      permission: "manage_inboxes",
      load: () => items("/blocklist"),
      id: (r) => str(r.id),
      columns: [
        { label: "admin.f.kind", value: (r) => str(r.kind) },
        { label: "admin.f.value", value: (r) => str(r.value) },
        { label: "admin.f.inbox_id", value: (r, l) => (r.inbox_id ? names([r.inbox_id], l.inboxes) : t("admin.all_inboxes")) },
      ],
      fields: [
        { name: "kind", label: "admin.f.kind", kind: "select", options: enumOf("address", "domain", "pattern") },
        { name: "value", label: "admin.f.value", kind: "text" },
        { name: "inbox_id", label: "admin.f.inbox_id", kind: "select", options: (l) => withNone(t("admin.all_inboxes"), l.inboxes), optional: true },
      ],
      create: (b) => api.post("/blocklist", b),
      remove: (r) => api.del(`/blocklist/${r.id}`),
    },
    {
      key: "autoreply",
      title: "admin.autoreply",
      permission: "manage_inboxes",
      load: async () => {
        const inboxes = await items("/inboxes", { all: "true" });
        return Promise.all(
          inboxes.map(async (i) => ({ ...(await api.get<Row>(`/inboxes/${i.id}/auto-reply`)), name: i.name })),
        );
      },
      id: (r) => str(r.inbox_id),
      columns: [
        { label: "admin.f.name", value: (r) => str(r.name) },
        { label: "admin.f.enabled", value: (r) => (r.enabled ? "✓" : "—") },
        { label: "admin.f.mode", value: (r) => str(r.mode) },
        { label: "admin.f.template_id", value: (r, l) => names([r.template_id], l.templates) },
        { label: "admin.f.hours", value: (r) => hoursToLines(r.hours).join(", ") },
      ],
      fields: [
        { name: "enabled", label: "admin.f.enabled", kind: "bool" },
        { name: "mode", label: "admin.f.mode", kind: "select", options: enumOf("outside_hours", "always") },
        { name: "hours", label: "admin.f.hours", kind: "list" },
        { name: "time_zone", label: "admin.f.time_zone", kind: "text", optional: true },
        { name: "template_id", label: "admin.f.template_id", kind: "select", options: (l) => withNone("—", l.templates) },
        { name: "period_hours", label: "admin.f.period_hours", kind: "number" },
        { name: "form_template_id", label: "admin.f.form_template_id", kind: "select", options: (l) => withNone("—", l.templates) },
      ],
      update: (r, b) =>
        api.put(`/inboxes/${r.inbox_id}/auto-reply`, {
          ...b,
          hours: linesToHours(b.hours as string[]),
          template_id: b.template_id || null,
          form_template_id: b.form_template_id || null,
        }),
    },
    {
      key: "dkim",
      title: "admin.dkim",
      permission: "manage_inboxes",
      load: () => items("/dkim-keys"),
      id: (r) => str(r.domain),
      columns: [
        { label: "admin.f.domain", value: (r) => str(r.domain) },
        { label: "admin.f.selector", value: (r) => str(r.selector) },
        { label: "admin.f.dns", value: (r) => `${str(r.dns_name)} TXT ${str(r.dns_txt).slice(0, 40)}…` },
      ],
      fields: [
        { name: "domain", label: "admin.f.domain", kind: "text", createOnly: true },
        { name: "selector", label: "admin.f.selector", kind: "text" },
        { name: "private_key_pem", label: "admin.f.private_key_pem", kind: "textarea" },
      ],
      create: (b) =>
        api.put(`/dkim-keys/${encodeURIComponent(str(b.domain))}`, { selector: b.selector, private_key_pem: b.private_key_pem }),
      remove: (r) => api.del(`/dkim-keys/${encodeURIComponent(str(r.domain))}`),
    },
    {
      key: "notices",
      title: "admin.notices",
      permission: "manage_notices",
      load: () => items("/notices"),
      id: (r) => str(r.id),
      columns: [
        { label: "admin.f.title", value: (r) => str(r.title) },
        { label: "admin.f.starts_at", value: (r) => local(r.starts_at).replace("T", " ") },
        { label: "admin.f.ends_at", value: (r) => local(r.ends_at).replace("T", " ") },
      ],
      fields: [
        { name: "title", label: "admin.f.title", kind: "text" },
        { name: "body", label: "admin.f.body", kind: "textarea" },
        { name: "starts_at", label: "admin.f.starts_at", kind: "datetime" },
        { name: "ends_at", label: "admin.f.ends_at", kind: "datetime" },
      ],
      create: (b) => api.post("/notices", b),
      update: (r, b) => api.put(`/notices/${r.id}`, b),
      remove: (r) => api.del(`/notices/${r.id}`),
    },
    {
      key: "mailboxes",
      title: "admin.mailboxes",
      permission: "manage_inboxes",
      load: () => items("/mailboxes"),
      id: (r) => str(r.id),
      columns: [
        { label: "admin.f.inbox_id", value: (r) => str((r.inbox as Row | undefined)?.name) },
        { label: "admin.f.host", value: (r) => `${str(r.host)}:${str(r.port)} (${str(r.security)})` },
        { label: "admin.f.username", value: (r) => str(r.username) },
        {
          label: "admin.f.state",
          value: (r) => {
            const st = (r.state ?? {}) as Row;
            return [r.enabled ? str(st.state) : "—", str(st.last_error)].filter(Boolean).join(" · ");
          },
        },
      ],
      fields: [
        { name: "inbox_id", label: "admin.f.inbox_id", kind: "select", options: (l) => l.inboxes, from: (r) => (r.inbox as Row | undefined)?.id },
        { name: "host", label: "admin.f.host", kind: "text" },
        { name: "port", label: "admin.f.port", kind: "number", initial: 993 },
        { name: "security", label: "admin.f.security", kind: "select", options: enumOf("tls", "starttls", "none"), initial: "tls" },
        { name: "username", label: "admin.f.username", kind: "text" },
        { name: "auth", label: "admin.f.auth", kind: "select", options: enumOf("password", "xoauth2"), initial: "password" },
        { name: "secret", label: "admin.f.secret", kind: "password", keepHint: "admin.keep_secret" },
        { name: "folder", label: "admin.f.folder", kind: "text", optional: true, initial: "INBOX" },
        { name: "after_fetch", label: "admin.f.after_fetch", kind: "select", options: enumOf("seen", "move", "delete"), initial: "seen" },
        { name: "move_to", label: "admin.f.move_to", kind: "text", optional: true },
        { name: "poll_interval_s", label: "admin.f.poll_interval_s", kind: "number", initial: 60 },
        { name: "enabled", label: "admin.f.enabled", kind: "bool", initial: true },
      ],
      create: (b) => api.post("/mailboxes", b),
      update: (r, b) => api.put(`/mailboxes/${r.id}`, b),
      remove: (r) => api.del(`/mailboxes/${r.id}`),
      test: (b, r) => (r ? api.post(`/mailboxes/${r.id}/test`) : api.post("/mailboxes/test", b)),
      testEdit: (r, b) => api.post(`/mailboxes/${r.id}/test`, b),
      refreshS: 5,
    },
    {
      key: "smtp",
      title: "admin.smtp",
      permission: "manage_inboxes",
      load: () => items("/smtp-routes"),
      id: (r) => str(r.id),
      columns: [
        { label: "admin.f.name", value: (r) => str(r.name) },
        { label: "admin.f.scope", value: (r, l) => `${str(r.scope)} ${str(r.domain)}${r.inbox_id ? names([r.inbox_id], l.inboxes) : ""}` },
        { label: "admin.f.host", value: (r) => `${str(r.host)}:${str(r.port)} (${str(r.security)})` },
      ],
      fields: [
        { name: "name", label: "admin.f.name", kind: "text" },
        { name: "scope", label: "admin.f.scope", kind: "select", options: enumOf("default", "inbox", "domain") },
        { name: "inbox_id", label: "admin.f.inbox_id", kind: "select", options: (l) => withNone("—", l.inboxes), optional: true },
        { name: "domain", label: "admin.f.domain", kind: "text", optional: true },
        { name: "host", label: "admin.f.host", kind: "text" },
        { name: "port", label: "admin.f.port", kind: "number" },
        { name: "security", label: "admin.f.security", kind: "select", options: enumOf("starttls", "tls", "none") },
        { name: "username", label: "admin.f.username", kind: "text", optional: true },
        { name: "password", label: "admin.f.password", kind: "password", optional: true, keepHint: "admin.keep_secret" },
        { name: "verify_certificate", label: "admin.f.verify_certificate", kind: "bool" },
      ],
      create: (b) => api.post("/smtp-routes", b),
      update: (r, b) => api.put(`/smtp-routes/${r.id}`, b),
      remove: (r) => api.del(`/smtp-routes/${r.id}`),
      test: (b, r) => (r ? api.post(`/smtp-routes/${r.id}/test`) : api.post("/smtp-routes/test", b)),
      testEdit: (r, b) => api.post(`/smtp-routes/${r.id}/test`, b),
    },
  ];
}

const WEEKDAYS = ["", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/** Business hours as lines: "Mon 09:00-18:00". */
function hoursToLines(v: unknown): string[] {
  return ((v ?? []) as { weekday: number; start: string; end: string }[]).map(
    (h) => `${WEEKDAYS[h.weekday] ?? h.weekday} ${h.start}-${h.end}`,
  );
}

function linesToHours(lines: string[]): { weekday: number; start: string; end: string }[] {
  return lines.map((line) => {
    const [day, span = ""] = line.split(/\s+/);
    const [start, end] = span.split("-");
    const named = WEEKDAYS.findIndex((d) => d && d.toLowerCase() === day.toLowerCase());
    return { weekday: named > 0 ? named : Number(day), start, end };
  });
}

function blank(f: Field): unknown {
  if (f.initial !== undefined) return f.initial;
  if (f.kind === "bool") return f.name === "active" || f.name === "verify_certificate";
  if (f.kind === "multi" || f.kind === "list") return [];
  if (f.kind === "number") return f.name === "port" ? 587 : f.name === "poll_interval_s" ? 60 : 0;
  return "";
}

function toForm(f: Field, v: unknown): unknown {
  if (f.kind === "list") {
    if (f.name === "hours") return hoursToLines(v);
    if (f.name === "thresholds") return (v as { after_minutes: number; color: string }[] | undefined)?.map((x) => `${x.after_minutes} ${x.color}`) ?? [];
    return (v as string[] | undefined) ?? [];
  }
  if (f.kind === "datetime") return local(v);
  if (v === null || v === undefined) return blank(f);
  return v;
}

function toBody(fields: Field[], values: Row, creating: boolean): Row {
  const body: Row = {};
  for (const f of fields) {
    if (f.createOnly && !creating) continue;
    const v = values[f.name];
    if (f.kind === "password" && !v) continue;
    if (f.optional && (v === "" || v === null)) continue;
    if (f.kind === "number") body[f.name] = Number(v);
    else if (f.kind === "datetime") body[f.name] = v ? new Date(String(v)).toISOString() : v;
    else body[f.name] = v;
  }
  return body;
}

function FieldInput({
  f,
  value,
  set,
  lookups,
  placeholder,
}: {
  f: Field;
  value: unknown;
  set: (v: unknown) => void;
  lookups: Lookups;
  placeholder?: string;
}) {
  const id = `f-${f.name}`;
  switch (f.kind) {
    case "textarea":
      return <textarea id={id} rows={5} value={str(value)} onChange={(e) => set(e.target.value)} />;
    case "number":
      return <input id={id} type="number" value={str(value)} onChange={(e) => set(e.target.value)} />;
    case "bool":
      return <input id={id} type="checkbox" checked={!!value} onChange={(e) => set(e.target.checked)} />;
    case "password":
      return (
        <input
          id={id}
          type="password"
          autoComplete="new-password"
          placeholder={placeholder}
          value={str(value)}
          onChange={(e) => set(e.target.value)}
        />
      );
    case "datetime":
      return <input id={id} type="datetime-local" value={str(value)} onChange={(e) => set(e.target.value)} />;
    case "list":
      return (
        <textarea
          id={id}
          rows={3}
          value={(value as string[]).join("\n")}
          onChange={(e) => set(e.target.value.split("\n").map((x) => x.trim()).filter(Boolean))}
        />
      );
    case "select":
      return (
        <select id={id} value={str(value)} onChange={(e) => set(e.target.value)}>
          {!(f.options?.(lookups) ?? []).some((o) => o.value === "") && <option value="">—</option>}
          {(f.options?.(lookups) ?? []).map((o) => (
            <option key={o.value} value={o.value}>{o.label}</option>
          ))}
        </select>
      );
    case "multi": {
      const chosen = new Set(value as string[]);
      return (
        <div className="checks" id={id}>
          {(f.options?.(lookups) ?? []).map((o) => (
            <label key={o.value} className="check">
              <input
                type="checkbox"
                checked={chosen.has(o.value)}
                onChange={(e) => {
                  const n = new Set(chosen);
                  if (e.target.checked) n.add(o.value);
                  else n.delete(o.value);
                  set([...n]);
                }}
              />
              {o.label}
            </label>
          ))}
        </div>
      );
    }
    default:
      return <input id={id} value={str(value)} onChange={(e) => set(e.target.value)} />;
  }
}

export function Admin({ section, session }: { section: string; session: Session }) {
  const { t } = useI18n();
  const all = useMemo(() => sections(t), [t]);
  const allowed = all.filter((s) => session.may(s.permission));
  const current = allowed.find((s) => s.key === section) ?? allowed[0];
  const [rows, setRows] = useState<Row[]>([]);
  const [editing, setEditing] = useState<Row | "new" | null>(null);
  const [values, setValues] = useState<Row>({});
  const [notice, setNotice] = useState("");
  const [lookups, setLookups] = useState<Lookups>({
    inboxes: [],
    operators: [],
    roles: [],
    permissions: [],
    folders: [],
    templates: [],
  });

  useEffect(() => {
    const opt = (r: Row[], v: string, l: string) => r.map((x) => ({ value: str(x[v]), label: str(x[l]) }));
    void Promise.allSettled([
      items("/inboxes", session.may("manage_inboxes") ? { all: "true" } : undefined),
      items("/operators"),
      items("/roles"),
      items("/permissions"),
      items("/template-folders"),
      items("/templates"),
    ]).then(([i, o, r, p, f, tp]) => {
      const v = (x: PromiseSettledResult<Row[]>) => (x.status === "fulfilled" ? x.value : []);
      setLookups({
        inboxes: opt(v(i), "id", "name"),
        operators: opt(v(o), "id", "display_name"),
        roles: opt(v(r), "name", "name"),
        permissions: opt(v(p), "name", "name"),
        folders: opt(v(f), "id", "name"),
        templates: opt(v(tp), "id", "name"),
      });
    });
  }, [session]);

  const load = useCallback(async () => {
    if (!current) return;
    try {
      const r = await current.load();
      setRows(r);
      if (current.single && r[0]) {
        setEditing(r[0]);
        setValues(Object.fromEntries(current.fields.map((f) => [f.name, toForm(f, r[0][f.name])])));
      }
    } catch (e) {
      setNotice(t("common.error", { m: messageOf(e) }));
    }
  }, [current, t]);

  useEffect(() => {
    setEditing(null);
    setNotice("");
    void load();
  }, [load]);

  useEffect(() => {
    if (!current?.refreshS) return;
    const timer = window.setInterval(() => {
      void current.load().then(setRows, () => undefined);
    }, current.refreshS * 1000);
    return () => window.clearInterval(timer);
  }, [current]);

  if (!current) return <main className="page"><p className="muted">{t("admin.none")}</p></main>;

  const open = (r: Row | "new") => {
    setEditing(r);
    setValues(
      Object.fromEntries(
        current.fields.map((f) => [f.name, r === "new" ? blank(f) : toForm(f, f.from ? f.from(r) : r[f.name])]),
      ),
    );
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const creating = editing === "new";
    try {
      const body = toBody(current.fields, values, creating);
      const out = creating ? await current.create!(body) : await current.update!(editing as Row, body);
      const temp = (out as { temporary_password?: string } | undefined)?.temporary_password;
      setNotice(temp ? t("admin.temporary", { p: temp }) : t("common.saved"));
      if (!current.single) setEditing(null);
      await load();
    } catch (err) {
      setNotice(t("common.error", { m: messageOf(err) }));
    }
  };

  // a stored row as it is; the form of a new row; or (edited) a stored row's form
  const runTest = async (row: Row | null, edited = false) => {
    setNotice(t("admin.testing"));
    try {
      const body = row && !edited ? null : toBody(current.fields, values, !row);
      const out = row && edited ? await current.testEdit!(row, body!) : await current.test!(body, row);
      setNotice(t(out.ok ? "admin.test_ok" : "admin.test_failed", { d: out.detail, ms: out.elapsed_ms }));
    } catch (e) {
      setNotice(t("common.error", { m: messageOf(e) }));
    }
  };

  const remove = async (r: Row) => {
    if (!window.confirm(t("admin.confirm_delete"))) return;
    try {
      await current.remove!(r);
      await load();
    } catch (e) {
      setNotice(t("common.error", { m: messageOf(e) }));
    }
  };

  return (
    <div className="admin-screen" data-testid="admin">
      <nav className="side" aria-label={t("nav.admin")}>
        <h2>{t("nav.admin")}</h2>
        {all.map((s) =>
          session.may(s.permission) ? (
            <a key={s.key} href={`#/admin/${s.key}`} className={s.key === current.key ? "current" : ""} data-testid={`admin-${s.key}`}>
              {t(s.title)}
            </a>
          ) : (
            <span key={s.key} className="disabled navitem" title={t("admin.needs", { p: s.permission })}>
              {t(s.title)}
            </span>
          ),
        )}
      </nav>
      <main className="page">
        <div className="row gap">
          <h1>{t(current.title)}</h1>
          <span className="spacer" />
          {current.create && !current.single && (
            <button className="primary" onClick={() => open("new")} data-testid="admin-new">{t("admin.new")}</button>
          )}
        </div>
        {notice && <p className="notice" role="status" data-testid="admin-notice">{notice}</p>}
        {!current.single && (
          <table className="table" data-testid="admin-table">
            <thead>
              <tr>
                {current.columns.map((c) => (
                  <th key={c.label}>{t(c.label)}</th>
                ))}
                <th />
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={current.id(r)} data-testid="admin-row">
                  {current.columns.map((c) => (
                    <td key={c.label}>{c.value(r, lookups)}</td>
                  ))}
                  <td className="nowrap">
                    {current.update && <button className="small" onClick={() => open(r)}>{t("admin.edit")}</button>}
                    {current.remove && <button className="small" onClick={() => void remove(r)}>{t("admin.delete")}</button>}
                    {current.actions?.(r, t, setNotice)}
                    {current.test && (
                      <button className="small" onClick={() => void runTest(r)} data-testid="admin-test-row">{t("admin.test")}</button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {editing && (
          <form className="card form" onSubmit={submit} data-testid="admin-form">
            {current.fields
              .filter((f) => editing === "new" || !f.createOnly)
              .map((f) => (
                <div key={f.name} className="field">
                  <label htmlFor={`f-${f.name}`}>{t(f.label)}</label>
                  <FieldInput
                    f={f}
                    value={values[f.name]}
                    set={(v) => setValues((old) => ({ ...old, [f.name]: v }))}
                    lookups={lookups}
                    placeholder={f.keepHint && editing !== "new" ? t(f.keepHint) : undefined}
                  />
                  {f.words && (
                    <WordPicker
                      target={`f-${f.name}`}
                      value={str(values[f.name])}
                      set={(v) => setValues((old) => ({ ...old, [f.name]: v }))}
                    />
                  )}
                </div>
              ))}
            <div className="actions">
              {!current.single && <button type="button" onClick={() => setEditing(null)}>{t("common.cancel")}</button>}
              {current.test && editing === "new" && (
                <button type="button" onClick={() => void runTest(null)} data-testid="admin-test">{t("admin.test")}</button>
              )}
              {current.testEdit && editing !== "new" && (
                <button type="button" onClick={() => void runTest(editing as Row, true)} data-testid="admin-test">{t("admin.test")}</button>
              )}
              <button className="primary" type="submit" data-testid="admin-save">{t("common.save")}</button>
            </div>
          </form>
        )}
      </main>
    </div>
  );
}

export function mayAdminister(session: Session): boolean {
  return sections((k) => k).some((s) => session.may(s.permission));
}
