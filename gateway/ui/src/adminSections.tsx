import { useI18n, Key } from "./i18n";
import { api } from "./api";
import { errorText } from "./errors";
import { Ctx, enumOf, items, joined, names, Row, Section, str, translated, whole, withNone } from "./adminTypes";
import { FlagButton, withFlags } from "./adminApproval";
import { surveySections } from "./adminSurvey";
import { outreachSections } from "./adminOutreach";

// The administration sections of settings (issue 8, item 6): one per resource of the API,
// a table and a form, each shown only with the permission its routes need (the server
// checks it again). Values are sent as the OpenAPI schemas name them.

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
export function WordPicker({ target, value, set }: { target: string; value: string; set: (v: string) => void }) {
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

export function settingsSections(ctx: Ctx): Section[] {
  const { t, dateTime } = ctx;
  return [
    {
      key: "operators",
      title: "admin.operators",
      permission: "manage_operators",
      load: async () => whole(withFlags(await items("/operators", { include_inactive: "true" }))),
      id: (r) => str(r.id),
      columns: [
        { label: "admin.f.display_name", value: (r) => str(r.display_name) },
        { label: "admin.f.login", value: (r) => str(r.login) },
        { label: "admin.f.roles", value: (r) => joined(r.roles) },
        { label: "admin.f.inbox_ids", value: (r, l) => names(r.inbox_ids, l.inboxes) },
        { label: "admin.f.active", value: (r) => (r.active ? "✓" : "—") },
        { label: "flag.column", value: (r) => dateTime(r.approval_until) },
      ],
      fields: [
        { name: "login", label: "admin.f.login", kind: "text", createOnly: true },
        { name: "display_name", label: "admin.f.display_name", kind: "text" },
        { name: "roles", label: "admin.f.roles", kind: "multi", options: (l) => l.roles },
        { name: "inbox_ids", label: "admin.f.inbox_ids", kind: "multi", options: (l) => l.inboxes },
        { name: "language", label: "admin.f.language", kind: "select", options: translated("language.", "ja", "en"), optional: true },
        { name: "time_zone", label: "admin.f.time_zone", kind: "text", optional: true },
        { name: "ip_allowlist", label: "admin.f.ip_allowlist", kind: "list" },
        { name: "active", label: "admin.f.active", kind: "bool" },
      ],
      create: (b) => api.post("/operators", b),
      update: (r, b) => api.patch(`/operators/${r.id}`, b),
      actions: (r, _ctx, say, reload) => (
        <>
          <FlagButton row={r} say={say} reload={reload} />
          <button
            className="small"
            onClick={async () => {
              try {
                const out = await api.post<{ temporary_password: string | null }>(`/operators/${r.id}/password`, {});
                say(t("admin.temporary", { p: out.temporary_password ?? "" }));
              } catch (e) {
                say(errorText(e, t));
              }
            }}
          >
            {t("admin.reset_password")}
          </button>
        </>
      ),
    },
    {
      key: "inboxes",
      title: "admin.inboxes",
      permission: "manage_inboxes",
      load: () => whole(items("/inboxes", { all: "true" })),
      id: (r) => str(r.id),
      columns: [
        { label: "admin.f.name", value: (r) => str(r.name) },
        { label: "admin.f.addresses", value: (r) => joined(r.addresses) },
        { label: "admin.f.member_ids", value: (r, l) => names(r.member_ids, l.operators) },
        { label: "admin.f.plain_text_only", value: (r) => (r.plain_text_only ? "✓" : "—") },
      ],
      fields: [
        { name: "name", label: "admin.f.name", kind: "text" },
        { name: "addresses", label: "admin.f.addresses", kind: "list" },
        { name: "member_ids", label: "admin.f.member_ids", kind: "multi", options: (l) => l.operators },
        { name: "plain_text_only", label: "admin.f.plain_text_only", kind: "bool" },
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
        return whole(
          Promise.all(
            inboxes.map(async (i) => ({
              ...(await api.get<Row>(`/inboxes/${i.id}/settings`)),
              name: i.name,
            })),
          ),
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
      load: () => whole(items("/roles")),
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
      load: async () => ({ rows: [await api.get<Row>("/tenant/settings")], next: null }),
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
      load: () => whole(items("/templates")),
      id: (r) => str(r.id),
      columns: [
        { label: "admin.f.name", value: (r) => str(r.name) },
        { label: "admin.f.kind", value: (r) => t(`kind.${str(r.kind)}` as Key) },
        { label: "admin.f.folder_id", value: (r, l) => names([r.folder_id], l.folders) },
        { label: "admin.f.keywords", value: (r) => joined(r.keywords) },
      ],
      fields: [
        { name: "kind", label: "admin.f.kind", kind: "select", options: translated("kind.", "template", "phrase") },
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
      load: () => whole(items("/template-folders")),
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
      load: () => whole(items("/signatures")),
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
      load: () => whole(items("/blocklist")),
      id: (r) => str(r.id),
      columns: [
        { label: "admin.f.kind", value: (r) => t(`block.${str(r.kind)}` as Key) },
        { label: "admin.f.value", value: (r) => str(r.value), mono: true },
        { label: "admin.f.inbox_id", value: (r, l) => (r.inbox_id ? names([r.inbox_id], l.inboxes) : t("admin.all_inboxes")) },
      ],
      fields: [
        { name: "kind", label: "admin.f.kind", kind: "select", options: translated("block.", "address", "domain", "pattern") },
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
        return whole(
          Promise.all(inboxes.map(async (i) => ({ ...(await api.get<Row>(`/inboxes/${i.id}/auto-reply`)), name: i.name }))),
        );
      },
      id: (r) => str(r.inbox_id),
      columns: [
        { label: "admin.f.name", value: (r) => str(r.name) },
        { label: "admin.f.enabled", value: (r) => (r.enabled ? "✓" : "—") },
        { label: "admin.f.mode", value: (r) => (r.mode ? t(`mode.${str(r.mode)}` as Key) : "") },
        { label: "admin.f.template_id", value: (r, l) => names([r.template_id], l.templates) },
        { label: "admin.f.hours", value: (r) => hoursToLines(r.hours).join(", ") },
      ],
      fields: [
        { name: "enabled", label: "admin.f.enabled", kind: "bool" },
        { name: "mode", label: "admin.f.mode", kind: "select", options: translated("mode.", "outside_hours", "always") },
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
    ...surveySections(ctx),
    ...outreachSections(ctx),
    {
      key: "dkim",
      title: "admin.dkim",
      permission: "manage_inboxes",
      load: () => whole(items("/dkim-keys")),
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
      load: () => whole(items("/notices")),
      id: (r) => str(r.id),
      columns: [
        { label: "admin.f.title", value: (r) => str(r.title) },
        { label: "admin.f.starts_at", value: (r) => dateTime(r.starts_at) },
        { label: "admin.f.ends_at", value: (r) => dateTime(r.ends_at) },
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
      load: () => whole(items("/mailboxes")),
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
        { name: "auth", label: "admin.f.auth", kind: "select", options: translated("auth.", "password", "xoauth2"), initial: "password" },
        { name: "secret", label: "admin.f.secret", kind: "password", keepHint: "admin.keep_secret" },
        { name: "folder", label: "admin.f.folder", kind: "text", optional: true, initial: "INBOX" },
        { name: "after_fetch", label: "admin.f.after_fetch", kind: "select", options: translated("after_fetch.", "seen", "move", "delete"), initial: "seen" },
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
      load: () => whole(items("/smtp-routes")),
      id: (r) => str(r.id),
      columns: [
        { label: "admin.f.name", value: (r) => str(r.name) },
        { label: "admin.f.scope", value: (r, l) => `${t(`scope.${str(r.scope)}` as Key)} ${str(r.domain)}${r.inbox_id ? names([r.inbox_id], l.inboxes) : ""}` },
        { label: "admin.f.host", value: (r) => `${str(r.host)}:${str(r.port)} (${str(r.security)})` },
      ],
      fields: [
        { name: "name", label: "admin.f.name", kind: "text" },
        { name: "scope", label: "admin.f.scope", kind: "select", options: translated("scope.", "default", "inbox", "domain") },
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
export function hoursToLines(v: unknown): string[] {
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

