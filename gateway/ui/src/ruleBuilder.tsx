import { PRIORITIES, STATUSES } from "./api";
import { Lookups } from "./adminTypes";
import { DateTimeInput } from "./DateTimeInput";
import { languageName, useFormat } from "./format";
import { Key, T, useI18n } from "./i18n";
import { about, Calendar } from "./routingTypes";

// The condition builder and the action list of a routing rule (issue 18, RTE-1): nested
// AND/OR groups of conditions over the mail and the ticket, each a field, an operator and
// a value whose input suits the field (a list for "in", a calendar for business hours, a
// date for the arrival time); and the actions in order. Each condition's path is the
// server's (`conditions.conditions[1].conditions[0]`), so a refusal's field and the dry
// run's "held / did not hold" land on the condition they are about.

export interface Leaf {
  field: string;
  operator: string;
  value: unknown;
  name?: string;
  negate?: boolean;
}
export interface Group {
  match: "all" | "any";
  conditions: Cond[];
}
export type Cond = Leaf | Group;
export interface Action {
  type: string;
  value?: string;
  to?: string[]; // notify: "operator:<id>", "inbox_members", "role:<name>"
  level?: number; // require_skill: the minimum level 1–5
}

export const isGroup = (c: Cond): c is Group => "match" in c;

type Kind = "text" | "list" | "bool" | "number" | "ordered" | "date" | "calendar" | "language";
export const FIELDS: Record<string, Kind> = {
  subject: "text",
  body: "text",
  sender_address: "text",
  sender_domain: "text",
  sender_name: "text",
  recipients: "list",
  header: "text",
  has_attachments: "bool",
  attachment_name: "list",
  attachment_type: "list",
  attachment_count: "number",
  size: "number",
  channel: "text",
  labels: "list",
  category: "text",
  priority: "ordered",
  status: "text",
  received_at: "date",
  business_hours: "calendar",
  sla_target: "text",
  // the contact's facts and the mail's detected language (issue 18, facts)
  contact_field: "text",
  customer_value: "number",
  vip: "bool",
  language: "language",
};
/** Fields that name what they read (`name`): a header, a contact's custom field. */
const NAMED: Record<string, Key> = { header: "rule.header_name", contact_field: "rule.contact_field_name" };
const TEXT_OPS = ["contains", "equals", "starts_with", "ends_with", "in", "regex"];
const NUMBER_OPS = ["equals", "in", "gt", "gte", "lt", "lte"];
export const OPERATORS: Record<Kind, string[]> = {
  text: TEXT_OPS,
  list: TEXT_OPS,
  bool: ["equals"],
  number: NUMBER_OPS,
  ordered: NUMBER_OPS,
  date: ["before", "after"],
  calendar: ["inside", "outside"],
  language: ["equals", "in"],
};
export const ACTIONS = [
  "add_label",
  "remove_label",
  "assign_by_strategy",
  "assign",
  "move_to_inbox",
  "set_status",
  "set_priority",
  "set_category",
  "require_approval",
  "mark_spam",
  "move_to_trash",
  "stop",
  // issue 18, second part: replies, people and systems told, a skill required
  "auto_reply",
  "notify",
  "webhook",
  "require_skill",
] as const;
const NO_VALUE = new Set(["assign_by_strategy", "mark_spam", "move_to_trash", "stop"]);
export const SKILL_LEVELS = [1, 2, 3, 4, 5];

/** The languages offered for the detected-language condition (ISO 639-1). */
export const LANGUAGES = ["ja", "en", "zh", "ko", "vi", "th", "id", "fr", "de", "es", "pt", "it", "ru"];


/** A fresh value of the right type for a field and operator. */
function blankValue(field: string, op: string): unknown {
  const kind = FIELDS[field] ?? "text";
  if (op === "in") return [];
  if (kind === "bool") return true;
  if (kind === "number") return 0;
  if (kind === "ordered") return "high";
  if (kind === "language") return "ja";
  return "";
}

export const newLeaf = (): Leaf => ({ field: "subject", operator: "contains", value: "" });
export const newGroup = (match: "all" | "any" = "all"): Group => ({ match, conditions: [newLeaf()] });

/** A condition in the UI's words (for the dry run's list). */
export function describe(c: Cond, t: T, calendars: Calendar[], dateTime: (iso: string) => string, lang = "en"): string {
  if (isGroup(c)) return t(c.match === "all" ? "rule.all_of" : "rule.any_of", { n: c.conditions.length });
  const field = c.field in NAMED ? `${t(`rule.f.${c.field}` as Key)} ${c.name ?? ""}` : t(`rule.f.${c.field}` as Key);
  let value: string;
  if (FIELDS[c.field] === "language") value = (Array.isArray(c.value) ? c.value : [String(c.value)]).map((x) => languageName(String(x), lang)).join(", ");
  else if (Array.isArray(c.value)) value = c.value.join(", ");
  else if (FIELDS[c.field] === "calendar") value = calendars.find((x) => x.id === c.value)?.name ?? String(c.value);
  else if (FIELDS[c.field] === "date") value = dateTime(String(c.value));
  else if (FIELDS[c.field] === "ordered") value = t(`priority.${c.value}` as Key);
  else if (FIELDS[c.field] === "bool") value = t(c.value ? "rule.yes" : "rule.no");
  else value = `“${String(c.value)}”`;
  const text = t("rule.leaf", { field, op: t(`rule.op.${c.operator}` as Key), value });
  return c.negate ? t("rule.not", { text }) : text;
}

function ValueInput({ c, set, calendars }: { c: Leaf; set: (v: unknown) => void; calendars: Calendar[] }) {
  const { t, lang } = useI18n();
  const kind = FIELDS[c.field] ?? "text";
  if (kind === "language") {
    const chosen = Array.isArray(c.value) ? c.value.map(String) : [];
    if (c.operator === "in")
      return (
        <span className="checks" data-testid="cond-value">
          {LANGUAGES.map((x) => (
            <label key={x} className="check small">
              <input type="checkbox" checked={chosen.includes(x)} onChange={(e) => set(e.target.checked ? [...chosen, x] : chosen.filter((y) => y !== x))} />
              {languageName(x, lang)}
            </label>
          ))}
        </span>
      );
    return (
      <select value={String(c.value ?? "")} onChange={(e) => set(e.target.value)} data-testid="cond-value">
        <option value="">{t("rule.language_unknown")}</option>
        {LANGUAGES.map((x) => (
          <option key={x} value={x}>{languageName(x, lang)}</option>
        ))}
      </select>
    );
  }
  if (c.operator === "in")
    return (
      <textarea
        rows={2}
        placeholder={t("pol.values")}
        value={(Array.isArray(c.value) ? c.value : []).join("\n")}
        onChange={(e) => set(e.target.value.split("\n").map((x) => x.trim()).filter(Boolean))}
        data-testid="cond-value"
      />
    );
  if (kind === "bool")
    return (
      <select value={c.value ? "true" : "false"} onChange={(e) => set(e.target.value === "true")} data-testid="cond-value">
        <option value="true">{t("rule.yes")}</option>
        <option value="false">{t("rule.no")}</option>
      </select>
    );
  if (kind === "number")
    return <input type="number" value={String(c.value ?? 0)} onChange={(e) => set(Number(e.target.value))} data-testid="cond-value" />;
  if (kind === "ordered")
    return (
      <select value={String(c.value)} onChange={(e) => set(e.target.value)} data-testid="cond-value">
        {PRIORITIES.map((p) => (
          <option key={p} value={p}>{t(`priority.${p}` as Key)}</option>
        ))}
      </select>
    );
  if (kind === "date")
    return <DateTimeInput value={String(c.value ?? "")} onChange={set} fromDays={-365} toDays={365} testId="cond-date" label={t("rule.f.received_at")} />;
  if (kind === "calendar")
    return (
      <select value={String(c.value ?? "")} onChange={(e) => set(e.target.value)} data-testid="cond-value">
        <option value="">—</option>
        {calendars.map((x) => (
          <option key={x.id} value={x.id}>{x.name}</option>
        ))}
      </select>
    );
  return (
    <input
      value={String(c.value ?? "")}
      onChange={(e) => set(e.target.value)}
      placeholder={c.operator === "regex" ? t("rule.regex_hint") : ""}
      className={c.operator === "regex" ? "mono" : undefined}
      data-testid="cond-value"
    />
  );
}

export interface Marks {
  error: { field: string; text: string } | null;
  held: Record<string, boolean>; // the dry run's answer by path
}

function Held({ path, marks }: { path: string; marks: Marks }) {
  const { t } = useI18n();
  if (!(path in marks.held)) return null;
  const ok = marks.held[path];
  return (
    <span className={ok ? "badge ok" : "badge warn"} data-testid="cond-held" data-held={ok}>
      {ok ? `✓ ${t("rule.held")}` : `✗ ${t("rule.not_held")}`}
    </span>
  );
}

function LeafRow({ c, path, set, remove, calendars, marks }: { c: Leaf; path: string; set: (c: Leaf) => void; remove: () => void; calendars: Calendar[]; marks: Marks }) {
  const { t } = useI18n();
  const kind = FIELDS[c.field] ?? "text";
  const bad = about(marks.error, path);
  return (
    <div className={bad ? "cond-leaf bad" : "cond-leaf"} data-testid="cond" data-path={path}>
      <select
        aria-label={t("rule.field")}
        value={c.field}
        onChange={(e) => {
          const field = e.target.value;
          const op = OPERATORS[FIELDS[field]].includes(c.operator) ? c.operator : OPERATORS[FIELDS[field]][0];
          set({ field, operator: op, value: blankValue(field, op), ...(field in NAMED ? { name: "" } : {}), negate: c.negate });
        }}
        data-testid="cond-field"
      >
        {Object.keys(FIELDS).map((f) => (
          <option key={f} value={f}>{t(`rule.f.${f}` as Key)}</option>
        ))}
      </select>
      {c.field in NAMED && (
        <input
          size={12}
          className={about(marks.error, `${path}.name`) ? "bad" : undefined}
          placeholder={t(NAMED[c.field])}
          aria-label={t(NAMED[c.field])}
          value={c.name ?? ""}
          onChange={(e) => set({ ...c, name: e.target.value })}
          data-testid={c.field === "header" ? "cond-header" : "cond-name"}
        />
      )}
      <select
        aria-label={t("rule.operator")}
        value={c.operator}
        onChange={(e) => {
          const op = e.target.value;
          const listy = op === "in" || c.operator === "in";
          set({ ...c, operator: op, value: listy ? blankValue(c.field, op) : c.value });
        }}
        data-testid="cond-op"
      >
        {OPERATORS[kind].map((o) => (
          <option key={o} value={o}>{t(`rule.op.${o}` as Key)}</option>
        ))}
      </select>
      <span className={kind === "language" && c.operator === "in" ? "cond-value wide" : "cond-value"}>
        <ValueInput c={c} set={(value) => set({ ...c, value })} calendars={calendars} />
      </span>
      <label className="check small">
        <input type="checkbox" checked={!!c.negate} onChange={(e) => set({ ...c, negate: e.target.checked })} data-testid="cond-negate" />
        {t("rule.negate")}
      </label>
      <Held path={path} marks={marks} />
      <button type="button" className="link small" onClick={remove} aria-label={t("rule.remove_condition")} data-testid="cond-remove">
        ✕
      </button>
    </div>
  );
}

/** A group of conditions (AND / OR) and the groups inside it. */
export function GroupBox({
  g,
  path,
  set,
  remove,
  calendars,
  marks,
  depth = 0,
}: {
  g: Group;
  path: string;
  set: (g: Group) => void;
  remove?: () => void;
  calendars: Calendar[];
  marks: Marks;
  depth?: number;
}) {
  const { t } = useI18n();
  const setAt = (i: number, c: Cond) => set({ ...g, conditions: g.conditions.map((x, k) => (k === i ? c : x)) });
  const drop = (i: number) => set({ ...g, conditions: g.conditions.filter((_, k) => k !== i) });
  return (
    <fieldset className={about(marks.error, path) && marks.error?.field === path ? "cond-group bad" : "cond-group"} data-testid="cond-group" data-path={path}>
      <legend className="row gap">
        <select aria-label={t("rule.match")} value={g.match} onChange={(e) => set({ ...g, match: e.target.value as Group["match"] })} data-testid="group-match">
          <option value="all">{t("rule.match_all")}</option>
          <option value="any">{t("rule.match_any")}</option>
        </select>
        <Held path={path} marks={marks} />
        {remove && (
          <button type="button" className="link small" onClick={remove} data-testid="group-remove">{t("rule.remove_group")}</button>
        )}
      </legend>
      {g.conditions.length === 0 && <p className="muted small">{t("rule.always")}</p>}
      {g.conditions.map((c, i) =>
        isGroup(c) ? (
          <GroupBox
            key={i}
            g={c}
            path={`${path}.conditions[${i}]`}
            set={(x) => setAt(i, x)}
            remove={() => drop(i)}
            calendars={calendars}
            marks={marks}
            depth={depth + 1}
          />
        ) : (
          <LeafRow key={i} c={c} path={`${path}.conditions[${i}]`} set={(x) => setAt(i, x)} remove={() => drop(i)} calendars={calendars} marks={marks} />
        ),
      )}
      <div className="row gap">
        <button type="button" className="link small" onClick={() => set({ ...g, conditions: [...g.conditions, newLeaf()] })} data-testid="add-cond">
          + {t("rule.add_condition")}
        </button>
        {depth < 4 && (
          <button
            type="button"
            className="link small"
            onClick={() => set({ ...g, conditions: [...g.conditions, newGroup(g.match === "all" ? "any" : "all")] })}
            data-testid="add-group"
          >
            + {t("rule.add_group")}
          </button>
        )}
      </div>
    </fieldset>
  );
}

/** Who a notify action names, in the UI's words. */
export function recipientText(to: string, t: T, lookups: Lookups): string {
  if (to === "inbox_members") return t("rule.to.inbox_members");
  if (to.startsWith("role:")) return t("rule.to.role", { name: to.slice(5) });
  if (to.startsWith("operator:")) return lookups.operators.find((o) => o.value === to.slice(9))?.label ?? to.slice(9);
  return to;
}

/** An action in the UI's words: "Add the label 返品". */
export function actionText(a: Action, t: T, lookups: Lookups): string {
  const name = (opts: { value: string; label: string }[]) => opts.find((o) => o.value === a.value)?.label ?? a.value ?? "";
  let v = a.value ?? "";
  if (a.type === "assign") v = name(lookups.operators);
  else if (a.type === "move_to_inbox") v = name(lookups.inboxes);
  else if (a.type === "set_status") v = t(`status.${a.value}` as Key);
  else if (a.type === "set_priority") v = t(`priority.${a.value}` as Key);
  else if (a.type === "auto_reply") v = name(lookups.templates);
  else if (a.type === "require_skill") v = t("rule.skill_at", { name: v, n: a.level ?? 1 });
  else if (a.type === "notify") v = t("rule.notify_text", { to: (a.to ?? []).map((x) => recipientText(x, t, lookups)).join(", "), text: v });
  return t(`rule.a.${a.type}` as Key) + (NO_VALUE.has(a.type) ? "" : `: ${v}`);
}

/** A fresh action of a type, with the keys its type takes. */
function newAction(type: string): Action {
  if (type === "require_approval") return { type, value: "approval-required" };
  if (NO_VALUE.has(type)) return { type };
  if (type === "notify") return { type, to: ["inbox_members"], value: "" };
  if (type === "require_skill") return { type, value: "", level: 1 };
  return { type, value: "" };
}

/** A notify action's recipients: the ticket's inbox's members, roles, operators. */
function Recipients({ to, set, lookups }: { to: string[]; set: (to: string[]) => void; lookups: Lookups }) {
  const { t } = useI18n();
  const box = (key: string, label: string, testId?: string) => (
    <label key={key} className="check small">
      <input type="checkbox" checked={to.includes(key)} onChange={(e) => set(e.target.checked ? [...to, key] : to.filter((x) => x !== key))} data-testid={testId} />
      {label}
    </label>
  );
  return (
    <div className="recipients" data-testid="notify-to">
      <div className="checks">{box("inbox_members", t("rule.to.inbox_members"), "notify-members")}</div>
      {lookups.roles.length > 0 && (
        <div className="checks">
          <span className="muted small">{t("rule.to.roles")}</span>
          {lookups.roles.map((r) => box(`role:${r.value}`, r.label))}
        </div>
      )}
      <div className="checks">
        <span className="muted small">{t("rule.to.operators")}</span>
        {lookups.operators.map((o) => box(`operator:${o.value}`, o.label))}
      </div>
    </div>
  );
}

function ActionValue({ a, set, lookups }: { a: Action; set: (v: string) => void; lookups: Lookups }) {
  const { t } = useI18n();
  const select = (opts: { value: string; label: string }[]) => (
    <select value={a.value ?? ""} onChange={(e) => set(e.target.value)} data-testid="action-value">
      <option value="">—</option>
      {opts.map((o) => (
        <option key={o.value} value={o.value}>{o.label}</option>
      ))}
    </select>
  );
  if (NO_VALUE.has(a.type)) return null;
  if (a.type === "assign") return select(lookups.operators);
  if (a.type === "auto_reply") return select(lookups.templates);
  if (a.type === "webhook")
    return <input type="url" size={34} placeholder="https://hooks.example.com/…" aria-label={t("rule.webhook_url")} value={a.value ?? ""} onChange={(e) => set(e.target.value)} data-testid="action-value" />;
  if (a.type === "require_skill")
    return <input size={14} placeholder={t("rule.skill_name")} aria-label={t("rule.skill_name")} value={a.value ?? ""} onChange={(e) => set(e.target.value)} data-testid="action-value" />;
  if (a.type === "notify")
    return <input size={30} placeholder={t("rule.notify_message")} aria-label={t("rule.notify_message")} maxLength={500} value={a.value ?? ""} onChange={(e) => set(e.target.value)} data-testid="action-value" />;
  if (a.type === "move_to_inbox") return select(lookups.inboxes);
  if (a.type === "set_status") return select(STATUSES.filter((s) => s !== "trash").map((s) => ({ value: s, label: t(`status.${s}` as Key) })));
  if (a.type === "set_priority") return select(PRIORITIES.map((p) => ({ value: p, label: t(`priority.${p}` as Key) })));
  return <input value={a.value ?? ""} onChange={(e) => set(e.target.value)} data-testid="action-value" />;
}

export function ActionList({ actions, set, lookups, error }: { actions: Action[]; set: (a: Action[]) => void; lookups: Lookups; error: Marks["error"] }) {
  const { t } = useI18n();
  const setAt = (i: number, a: Action) => set(actions.map((x, k) => (k === i ? a : x)));
  return (
    <div className={error?.field === "actions" ? "bad" : undefined}>
      {actions.map((a, i) => (
        <div key={i} className={about(error, `actions[${i}]`) ? "action bad" : "action"} data-testid="action" data-type={a.type}>
          <div className="row gap wrap">
            <span className="muted small">{i + 1}.</span>
            <select aria-label={t("rule.action")} value={a.type} onChange={(e) => setAt(i, newAction(e.target.value))} data-testid="action-type">
              {ACTIONS.map((x) => (
                <option key={x} value={x}>{t(`rule.a.${x}` as Key)}</option>
              ))}
            </select>
            <ActionValue a={a} set={(value) => setAt(i, { ...a, value })} lookups={lookups} />
            {a.type === "require_skill" && (
              <select aria-label={t("rf.level")} value={a.level ?? 1} onChange={(e) => setAt(i, { ...a, level: Number(e.target.value) })} data-testid="action-level">
                {SKILL_LEVELS.map((n) => (
                  <option key={n} value={n}>{t("rule.level_or_more", { n })}</option>
                ))}
              </select>
            )}
            <span className="spacer" />
            <button type="button" className="link small" onClick={() => set(actions.filter((_, k) => k !== i))} data-testid="action-remove">
              {t("pol.remove")}
            </button>
          </div>
          {a.type === "notify" && <Recipients to={a.to ?? []} set={(to) => setAt(i, { ...a, to })} lookups={lookups} />}
          {a.type === "auto_reply" && <p className="muted small">{t("rule.auto_reply_help")}</p>}
          {a.type === "webhook" && <p className="muted small">{t("rule.webhook_help")}</p>}
        </div>
      ))}
      <button type="button" className="link small" onClick={() => set([...actions, { type: "add_label", value: "" }])} data-testid="add-action">
        + {t("rule.add_action")}
      </button>
    </div>
  );
}

/** The dry run's conditions, each in the UI's words with whether it held. */
export function useDescribe(calendars: Calendar[]) {
  const { t, lang } = useI18n();
  const { dateTime } = useFormat();
  return (c: Cond) => describe(c, t, calendars, (iso) => dateTime(iso), lang);
}
