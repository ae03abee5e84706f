import { api } from "./api";
import { Key } from "./i18n";
import { Ctx, items, Option, Page, Query, Row, Section, str, translated, whole, withNone } from "./adminTypes";

// The administration's records (issue 16, item 8): the operation log, the login history,
// who is logged in, locked logins, web forms and mail imports — what the API keeps,
// each shown with the permission its routes need, filtered as the API filters, paged
// where the API pages, with the CSV download where the API has one.

const PAGE = 100;

async function paged(path: string, query: Query, cursor: string | null): Promise<Page> {
  const r = await api.get<{ items: Row[]; next: string | null }>(path, { ...query, limit: PAGE, cursor });
  return { rows: r.items, next: r.next };
}

const operatorName = (v: unknown) => str((v as { name?: string } | null)?.name);
const inboxName = (v: unknown) => str((v as { name?: string } | null)?.name);
const anyone = (ops: Option[], t: Ctx["t"]) => withNone(t("list.filter.anyone"), ops);
const query = (q: Query) => new URLSearchParams(Object.entries(q).filter(([, v]) => v !== "")).toString();

export function logSections({ t, dateTime }: Ctx): Section[] {
  const word = (prefix: string, v: unknown) => (v ? t(`${prefix}${str(v)}` as Key) : "");
  return [
    {
      key: "operations",
      title: "admin.operations",
      permission: "view_operation_log",
      help: "admin.operations_help",
      load: (q, cursor) => paged("/operations", q, cursor),
      id: (r) => str(r.id),
      filters: [
        { name: "operator_id", label: "admin.f.operator", kind: "select", options: (l) => anyone(l.operators, t) },
        { name: "action", label: "admin.f.action", kind: "text" },
        { name: "q", label: "admin.f.text", kind: "text" },
        { name: "from", label: "admin.f.from", kind: "day_from" },
        { name: "to", label: "admin.f.to", kind: "day_to" },
      ],
      csv: { permission: "export", href: (q) => `/api/v1/operations.csv?${query(q)}` },
      columns: [
        { label: "admin.f.at", value: (r) => dateTime(r.at) },
        { label: "admin.f.operator", value: (r) => operatorName(r.operator) },
        { label: "admin.f.action", value: (r) => str(r.action), mono: true },
        { label: "admin.f.path", value: (r) => `${str(r.method)} ${str(r.path)}`, mono: true },
        { label: "admin.f.status", value: (r) => str(r.status) },
        { label: "admin.f.client_address", value: (r) => str(r.client_address), mono: true },
      ],
      fields: [],
    },
    {
      key: "logins",
      title: "admin.logins",
      permission: "manage_operators",
      load: (q, cursor) => paged("/logins", q, cursor),
      id: (r) => str(r.id),
      filters: [
        { name: "operator_id", label: "admin.f.operator", kind: "select", options: (l) => anyone(l.operators, t) },
        { name: "failures_only", label: "admin.f.failures_only", kind: "bool" },
      ],
      columns: [
        { label: "admin.f.at", value: (r) => dateTime(r.at) },
        { label: "admin.f.login", value: (r) => str(r.login) },
        { label: "admin.f.result", value: (r) => word("login_result.", r.result) },
        { label: "admin.f.client_address", value: (r) => str(r.client_address), mono: true },
        { label: "admin.f.user_agent", value: (r) => str(r.user_agent).slice(0, 80) },
      ],
      fields: [],
    },
    {
      key: "sessions",
      title: "admin.sessions",
      permission: "manage_operators",
      load: (q) => whole(items("/sessions", q)),
      id: (r) => str(r.id),
      filters: [
        {
          name: "seen_within_minutes",
          label: "admin.f.seen_within",
          kind: "select",
          initial: "15",
          options: translated("within.", "15", "60", "240", "1440"),
        },
      ],
      columns: [
        { label: "admin.f.operator", value: (r) => operatorName(r.operator) },
        { label: "admin.f.kind", value: (r) => word("session_kind.", r.kind) },
        { label: "admin.f.client_address", value: (r) => str(r.client_address), mono: true },
        { label: "admin.f.user_agent", value: (r) => str(r.user_agent).slice(0, 80) },
        { label: "admin.f.created_at", value: (r) => dateTime(r.created_at) },
        { label: "admin.f.last_seen_at", value: (r) => dateTime(r.last_seen_at) },
      ],
      fields: [],
      remove: (r) => api.del(`/sessions/${r.id}`),
      removeLabel: "admin.end_session",
      refreshS: 15,
    },
    {
      key: "login_locks",
      title: "admin.login_locks",
      permission: "manage_operators",
      help: "admin.login_locks_help",
      load: () => whole(items("/login-locks")),
      id: (r) => `${str(r.kind)}:${str(r.key)}`,
      columns: [
        { label: "admin.f.kind", value: (r) => word("lock_kind.", r.kind) },
        { label: "admin.f.key", value: (r) => str(r.key), mono: true },
        { label: "admin.f.failures", value: (r) => str(r.failures) },
        { label: "admin.f.locked_at", value: (r) => dateTime(r.locked_at) },
        { label: "admin.f.until", value: (r) => dateTime(r.until) },
      ],
      fields: [],
      remove: (r) => api.del(`/login-locks/${str(r.kind)}/${encodeURIComponent(str(r.key))}`),
      removeLabel: "admin.unlock",
      refreshS: 15,
    },
    {
      key: "forms",
      title: "admin.forms",
      permission: "manage_inboxes",
      help: "admin.forms_help",
      load: () => whole(items("/forms")),
      id: (r) => str(r.id),
      columns: [
        { label: "admin.f.name", value: (r) => str(r.name) },
        { label: "admin.f.inbox_id", value: (r) => inboxName(r.inbox) },
        { label: "admin.f.enabled", value: (r) => (r.enabled ? "✓" : "—") },
        { label: "admin.f.submit_url", value: (r) => str(r.submit_url), mono: true },
        { label: "admin.f.redirect_url", value: (r) => str(r.redirect_url), mono: true },
        { label: "admin.f.created_at", value: (r) => dateTime(r.created_at) },
      ],
      fields: [
        { name: "inbox_id", label: "admin.f.inbox_id", kind: "select", options: (l) => l.inboxes },
        { name: "name", label: "admin.f.name", kind: "text" },
        { name: "redirect_url", label: "admin.f.redirect_url", kind: "text", optional: true },
      ],
      create: (b) => api.post("/forms", b),
      remove: (r) => api.del(`/forms/${r.id}`),
    },
    {
      key: "imports",
      title: "admin.imports",
      permission: "manage_inboxes",
      help: "admin.imports_help",
      load: () => whole(items("/imports")),
      id: (r) => str(r.id),
      columns: [
        { label: "admin.f.created_at", value: (r) => dateTime(r.created_at) },
        { label: "admin.f.inbox_id", value: (r) => inboxName(r.inbox) },
        { label: "admin.f.filename", value: (r) => str(r.filename) },
        { label: "admin.f.state", value: (r) => word("import_state.", r.state) },
        {
          label: "admin.f.progress",
          value: (r) =>
            t("admin.import_progress", {
              done: str(r.done),
              total: r.total === null || r.total === undefined ? "?" : str(r.total),
              created: str(r.created),
              duplicates: str(r.duplicates),
              failed: Array.isArray(r.failures) ? r.failures.length : 0,
            }),
        },
        { label: "admin.f.error", value: (r) => str(r.error) },
      ],
      fields: [
        { name: "inbox_id", label: "admin.f.inbox_id", kind: "select", options: (l) => l.inboxes },
        { name: "file", label: "admin.f.file", kind: "file" },
      ],
      create: (b) => {
        const file = b.file as File;
        return api.post("/imports", file, { inbox_id: str(b.inbox_id), filename: file.name });
      },
      refreshS: 3,
    },
  ];
}
