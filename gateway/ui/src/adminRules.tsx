import { DragEvent, FormEvent, useCallback, useEffect, useState } from "react";
import { api } from "./api";
import { Ctx, Lookups, Section } from "./adminTypes";
import { Dialog } from "./Dialog";
import { errorText } from "./errors";
import { useFormat } from "./format";
import { DICTS, Key, useI18n } from "./i18n";
import { FormEnd, useNotice } from "./routingForm";
import { about, Calendar, formError } from "./routingTypes";
import { Action, actionText, ActionList, Cond, Group, GroupBox, isGroup, Marks, newLeaf, useDescribe } from "./ruleBuilder";

// Routing rules (issue 18, RTE-1): the tenant's rules as one ordered list — evaluated top
// to bottom — reordered by dragging a row or with its ↑ ↓ buttons (the keyboard's way),
// switched on and off in place, and edited in a form: the inbox it applies to, its
// triggers, the condition builder (nested AND / OR groups), the actions in order, "once
// per ticket" and "only inside / outside business hours". The form's dry run tries the
// rule as it stands in the form (saved or not) against a ticket picked by its number:
// which conditions held — marked on the builder and listed — and what it would do.

export interface Rule {
  id?: string;
  name: string;
  inbox_id: string | null;
  position?: number;
  enabled: boolean;
  triggers: string[];
  conditions: Group;
  actions: Action[];
  once_per_ticket: boolean;
  business_hours: { calendar_id: string; when: "inside" | "outside" } | null;
  no_first_reply_minutes?: number | null; // with the trigger no_first_reply
  version?: number;
}

const TRIGGERS = ["new_ticket", "customer_reply", "ticket_changed", "sla_warning", "sla_breached", "no_first_reply", "pending_until"] as const;
const blankRule = (): Rule => ({
  name: "",
  inbox_id: null,
  enabled: true,
  triggers: ["new_ticket"],
  conditions: { match: "all", conditions: [newLeaf()] },
  actions: [{ type: "add_label", value: "" }],
  once_per_ticket: false,
  business_hours: null,
});

const body = (r: Rule) => ({
  name: r.name,
  inbox_id: r.inbox_id,
  enabled: r.enabled,
  triggers: r.triggers,
  conditions: r.conditions,
  actions: r.actions,
  once_per_ticket: r.once_per_ticket,
  business_hours: r.business_hours,
  // the minutes go with their trigger only (the server refuses them without it)
  ...(r.triggers.includes("no_first_reply") ? { no_first_reply_minutes: r.no_first_reply_minutes ?? null } : {}),
});

const hasKey = (key: string): key is Key => key in DICTS.en;
const skippedText = (why: string, t: (k: Key, v?: Record<string, string | number>) => string) =>
  hasKey(`rule.skipped.${why}`) ? t(`rule.skipped.${why}` as Key) : t("rule.skipped_other", { reason: why });

/** A rule's triggers in the UI's words: "No first reply within 30 min". */
function triggerText(r: Rule, x: string, t: (k: Key, v?: Record<string, string | number>) => string): string {
  if (x === "no_first_reply" && r.no_first_reply_minutes) return t("rule.t.no_first_reply_n", { n: r.no_first_reply_minutes });
  return t(`rule.t.${x}` as Key);
}

interface DryResult {
  ticket: { id: string; number: number; subject: string };
  results: {
    rule_id: string;
    rule_name: string;
    matched: boolean;
    skipped: string;
    conditions: { path: string; description: string; held: boolean }[];
    actions: string[];
  }[];
}

/** The node of the form's tree a dry-run path names (`conditions.conditions[1]`). */
function nodeAt(root: Group, path: string): Cond | null {
  let node: Cond = root;
  for (const m of path.replace(/^conditions/, "").matchAll(/\.conditions\[(\d+)\]/g)) {
    if (!isGroup(node)) return null;
    node = node.conditions[Number(m[1])];
    if (!node) return null;
  }
  return node;
}

function DryRun({ rule, lookups, calendars, setHeld }: { rule: Rule; lookups: Lookups; calendars: Calendar[]; setHeld: (h: Record<string, boolean>) => void }) {
  const { t } = useI18n();
  const describe = useDescribe(calendars);
  const [number, setNumber] = useState("");
  const [trigger, setTrigger] = useState("new_ticket");
  const [out, setOut] = useState<DryResult | null>(null);
  const [error, setError] = useState("");
  const run = async () => {
    setError("");
    try {
      const r = await api.post<DryResult>("/rules/dry-run", { ticket_number: Number(number), trigger, rule: body(rule) });
      setOut(r);
      setHeld(Object.fromEntries((r.results[0]?.conditions ?? []).map((c) => [c.path, c.held])));
    } catch (e) {
      setOut(null);
      setHeld({});
      setError(formError(e, t).text);
    }
  };
  const res = out?.results[0];
  const ran = !!res && res.matched && !res.skipped;
  return (
    <section className="policy-box dry-run" data-testid="dry-run">
      <strong>{t("rule.dry_run")}</strong>
      <p className="muted small">{t("rule.dry_run_help")}</p>
      <div className="row gap wrap">
        <label className="check">
          {t("rule.ticket_number")}
          <input type="number" min={1} size={6} value={number} onChange={(e) => setNumber(e.target.value)} data-testid="dry-number" />
        </label>
        <select aria-label={t("rule.trigger")} value={trigger} onChange={(e) => setTrigger(e.target.value)} data-testid="dry-trigger">
          {TRIGGERS.map((x) => (
            <option key={x} value={x}>{t(`rule.t.${x}` as Key)}</option>
          ))}
        </select>
        <button type="button" disabled={!number} onClick={() => void run()} data-testid="dry-go">{t("rule.dry_go")}</button>
      </div>
      {error && <p className="error small" role="alert" data-testid="dry-error">{error}</p>}
      {out && res && (
        <div data-testid="dry-result" data-matched={res.matched} data-skipped={res.skipped}>
          <p>
            <span className="muted">#{out.ticket.number}</span> {out.ticket.subject}
          </p>
          <p className={ran ? "badge ok" : "badge warn"} data-testid="dry-verdict">
            {res.skipped ? skippedText(res.skipped, t) : res.matched ? t("rule.would_run") : t("rule.would_not_run")}
          </p>
          <ul className="dry-conds">
            {res.conditions.map((c) => {
              const node = nodeAt(rule.conditions, c.path);
              return (
                <li key={c.path} data-testid="dry-cond" data-held={c.held}>
                  {c.held ? "✓" : "✗"} {node ? describe(node) : c.description}
                </li>
              );
            })}
          </ul>
          {ran && (
            <>
              <div className="small muted">{t("rule.would_do")}</div>
              <ol data-testid="dry-actions">
                {rule.actions.map((a, i) => (
                  <li key={i}>{actionText(a, t, lookups)}</li>
                ))}
              </ol>
            </>
          )}
        </div>
      )}
    </section>
  );
}

/** A stored rule's versions, newest first: which, when, by whom (each edit is kept). */
function Versions({ id, lookups }: { id: string; lookups: Lookups }) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const [versions, setVersions] = useState<(Rule & { updated_at: string; updated_by: string | null })[]>([]);
  useEffect(() => {
    void api
      .get<{ versions: (Rule & { updated_at: string; updated_by: string | null })[] }>(`/rules/${id}/versions`)
      .then((r) => setVersions(r.versions))
      .catch(() => {});
  }, [id]);
  if (versions.length === 0) return null;
  return (
    <details className="policy-box" data-testid="rule-versions">
      <summary>{t("rule.versions", { n: versions.length })}</summary>
      <ul className="dry-conds">
        {versions.map((v) => (
          <li key={v.version} data-testid="rule-version">
            {t("rule.version_line", {
              v: v.version ?? 0,
              at: dateTime(v.updated_at),
              name: lookups.operators.find((o) => o.value === v.updated_by)?.label ?? "—",
            })}
            {" · "}
            {v.name}
            {v.enabled ? "" : ` (${t("rt.disabled")})`}
          </li>
        ))}
      </ul>
    </details>
  );
}

function RuleForm({ rule, lookups, calendars, done }: { rule: Rule | "new"; lookups: Lookups; calendars: Calendar[]; done: (saved: boolean) => void }) {
  const { t } = useI18n();
  const [r, setR] = useState<Rule>(() => (rule === "new" ? blankRule() : structuredClone(rule)));
  const [error, setError] = useState<{ text: string; field: string } | null>(null);
  const [held, setHeld] = useState<Record<string, boolean>>({});
  const marks: Marks = { error, held };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    try {
      if (rule !== "new") await api.put(`/rules/${rule.id}`, { ...body(r), version: r.version });
      else await api.post("/rules", body(r));
      done(true);
    } catch (err) {
      setError(formError(err, t));
    }
  };
  const toggleTrigger = (x: string, on: boolean) =>
    setR({
      ...r,
      triggers: on ? [...r.triggers, x] : r.triggers.filter((y) => y !== x),
      ...(x === "no_first_reply" && on && !r.no_first_reply_minutes ? { no_first_reply_minutes: 30 } : {}),
    });
  const bh = r.business_hours;
  return (
    <div className="rule-edit">
      <form className="card form" onSubmit={submit} data-testid="rule-form">
          <div className={about(error, "name") ? "field bad" : "field"}>
          <label htmlFor="rule-name">{t("rf.name")}</label>
          <input id="rule-name" value={r.name} onChange={(e) => setR({ ...r, name: e.target.value })} data-testid="rule-name" />
        </div>
        <div className="field">
          <label htmlFor="rule-inbox">{t("rf.inbox_id")}</label>
          <select id="rule-inbox" value={r.inbox_id ?? ""} onChange={(e) => setR({ ...r, inbox_id: e.target.value || null })} data-testid="rule-inbox">
            <option value="">{t("rule.every_inbox")}</option>
            {lookups.inboxes.map((o) => (
              <option key={o.value} value={o.value}>{o.label}</option>
            ))}
          </select>
        </div>
        <div className={about(error, "triggers") ? "field bad" : "field"}>
          <span>{t("rf.triggers")}</span>
          <div>
            <div className="checks">
              {TRIGGERS.map((x) => (
                <label key={x} className="check">
                  <input type="checkbox" checked={r.triggers.includes(x)} onChange={(e) => toggleTrigger(x, e.target.checked)} data-testid={`trigger-${x}`} />
                  {t(`rule.t.${x}` as Key)}
                </label>
              ))}
            </div>
            {r.triggers.includes("no_first_reply") && (
              <label className={about(error, "no_first_reply_minutes") ? "check minutes bad" : "check minutes"}>
                {t("rule.no_first_reply_within")}
                <input
                  type="number"
                  min={1}
                  max={525600}
                  size={6}
                  value={r.no_first_reply_minutes ?? ""}
                  onChange={(e) => setR({ ...r, no_first_reply_minutes: e.target.value === "" ? null : Number(e.target.value) })}
                  data-testid="rule-no-reply-minutes"
                />
                {t("rule.minutes")}
              </label>
            )}
            {r.triggers.includes("pending_until") && <p className="muted small">{t("rule.pending_until_help")}</p>}
          </div>
        </div>
        <div className="field">
          <span>{t("rf.conditions")}</span>
          <GroupBox g={r.conditions} path="conditions" set={(g) => setR({ ...r, conditions: g })} calendars={calendars} marks={marks} />
        </div>
        <div className="field">
          <span>{t("rf.actions")}</span>
          <ActionList actions={r.actions} set={(a) => setR({ ...r, actions: a })} lookups={lookups} error={error} />
        </div>
        <div className="field">
          <label htmlFor="rule-once">{t("rf.once_per_ticket")}</label>
          <input id="rule-once" type="checkbox" checked={r.once_per_ticket} onChange={(e) => setR({ ...r, once_per_ticket: e.target.checked })} />
        </div>
        <div className={about(error, "business_hours") ? "field bad" : "field"}>
          <label htmlFor="rule-hours">{t("rf.business_hours")}</label>
          <span className="row gap">
            <select
              id="rule-hours"
              value={bh?.when ?? ""}
              onChange={(e) =>
                setR({ ...r, business_hours: e.target.value ? { calendar_id: bh?.calendar_id ?? calendars[0]?.id ?? "", when: e.target.value as "inside" | "outside" } : null })
              }
              data-testid="rule-hours"
            >
              <option value="">{t("rule.hours_any")}</option>
              <option value="inside">{t("rule.hours_inside")}</option>
              <option value="outside">{t("rule.hours_outside")}</option>
            </select>
            {bh && (
              <select aria-label={t("rf.calendar_id")} value={bh.calendar_id} onChange={(e) => setR({ ...r, business_hours: { ...bh, calendar_id: e.target.value } })}>
                <option value="">—</option>
                {calendars.map((c) => (
                  <option key={c.id} value={c.id}>{c.name}</option>
                ))}
              </select>
            )}
          </span>
        </div>
        <div className="field">
          <label htmlFor="rule-enabled">{t("rf.enabled")}</label>
          <input id="rule-enabled" type="checkbox" checked={r.enabled} onChange={(e) => setR({ ...r, enabled: e.target.checked })} />
        </div>
        <FormEnd error={error} done={done} saveId="rule-save" />
      </form>
      <div className="rule-side">
        <DryRun rule={r} lookups={lookups} calendars={calendars} setHeld={setHeld} />
        {rule !== "new" && rule.id && <Versions id={rule.id} lookups={lookups} />}
      </div>
    </div>
  );
}

function RulesPage({ lookups }: { lookups: Lookups }) {
  const { t } = useI18n();
  const [rules, setRules] = useState<Rule[] | null>(null);
  const [calendars, setCalendars] = useState<Calendar[]>([]);
  const [editing, setEditing] = useState<Rule | "new" | null>(null);
  const [notice, setNotice] = useNotice();
  const [removing, setRemoving] = useState<Rule | null>(null);
  const [dragged, setDragged] = useState<number | null>(null);

  const load = useCallback(async () => {
    try {
      setRules((await api.get<{ rules: Rule[] }>("/rules")).rules);
    } catch (e) {
      setNotice((t) => errorText(e, t));
    }
  }, [t]);
  useEffect(() => {
    void load();
    void api.get<{ calendars: Calendar[] }>("/calendars").then((r) => setCalendars(r.calendars)).catch(() => {});
  }, [load]);

  /** Saves a new order (the list shows it at once; the server's answer is kept). */
  const reorder = async (from: number, to: number) => {
    if (!rules || from === to || to < 0 || to >= rules.length) return;
    const next = [...rules];
    const [moved] = next.splice(from, 1);
    next.splice(to, 0, moved);
    setRules(next);
    try {
      setRules((await api.put<{ rules: Rule[] }>("/rules/order", { rule_ids: next.map((x) => x.id) })).rules);
      setNotice((t) => t("rule.order_saved"));
    } catch (e) {
      setNotice((t) => errorText(e, t));
      void load();
    }
  };
  const setEnabled = async (r: Rule, enabled: boolean) => {
    setRules((old) => old && old.map((x) => (x.id === r.id ? { ...x, enabled } : x))); // shown at once, read again below
    try {
      await api.put(`/rules/${r.id}`, { ...body(r), enabled, version: r.version });
      setNotice((t) => t(enabled ? "rule.enabled_now" : "rule.disabled_now", { name: r.name }));
    } catch (e) {
      setNotice((t) => formError(e, t).text);
    }
    await load();
  };
  const remove = async (r: Rule) => {
    setRemoving(null);
    try {
      await api.del(`/rules/${r.id}`);
      await load();
    } catch (e) {
      setNotice((t) => errorText(e, t));
    }
  };

  const inboxName = (id: string | null) => (id ? (lookups.inboxes.find((o) => o.value === id)?.label ?? id) : t("rule.every_inbox"));
  return (
    <>
      <div className="row gap">
        <h1>{t("rt.rules")}</h1>
        <span className="spacer" />
        <button className="primary" onClick={() => setEditing("new")} data-testid="rule-new">{t("admin.new")}</button>
      </div>
      <p className="muted small">{t("rt.rules_help")}</p>
      {notice && <p className="notice" role="status" data-testid="admin-notice">{notice}</p>}
      {editing && (
        <RuleForm
          key={editing === "new" ? "new" : editing.id}
          rule={editing}
          lookups={lookups}
          calendars={calendars}
          done={(saved) => {
            setEditing(null);
            if (saved) {
              setNotice((t) => t("common.saved"));
              void load();
            }
          }}
        />
      )}
      {rules === null ? (
        <p className="muted">{t("list.loading")}</p>
      ) : rules.length === 0 ? (
        <p className="muted" data-testid="admin-empty">{t("rule.none")}</p>
      ) : (
        <ol className="rule-list" data-testid="rule-list">
          {rules.map((r, i) => (
            <li
              key={r.id}
              className={`${dragged === i ? "dragging " : ""}${r.enabled ? "" : "off"}`}
              draggable
              onDragStart={(e: DragEvent) => {
                setDragged(i);
                e.dataTransfer.effectAllowed = "move";
                e.dataTransfer.setData("text/plain", String(i));
              }}
              onDragOver={(e) => e.preventDefault()}
              onDrop={(e) => {
                e.preventDefault();
                const from = Number(e.dataTransfer.getData("text/plain"));
                setDragged(null);
                void reorder(from, i);
              }}
              onDragEnd={() => setDragged(null)}
              data-testid="rule-row"
              data-rule={r.id}
            >
              <span className="handle" aria-hidden="true" title={t("rule.drag")}>⋮⋮</span>
              <span className="num">{i + 1}</span>
              <span className="rule-main">
                <strong data-testid="rule-row-name">{r.name}</strong>{" "}
                <span className="muted small">
                  {inboxName(r.inbox_id)} · {r.triggers.map((x) => triggerText(r, x, t)).join(", ")}
                </span>
                <span className="small rule-actions">{r.actions.map((a) => actionText(a, t, lookups)).join(" → ")}</span>
              </span>
              <label className="check small">
                <input type="checkbox" checked={r.enabled} onChange={(e) => void setEnabled(r, e.target.checked)} data-testid="rule-enabled" />
                {t("rf.enabled")}
              </label>
              <button className="small" disabled={i === 0} onClick={() => void reorder(i, i - 1)} aria-label={t("rule.up", { name: r.name })} data-testid="rule-up">↑</button>
              <button className="small" disabled={i === rules.length - 1} onClick={() => void reorder(i, i + 1)} aria-label={t("rule.down", { name: r.name })} data-testid="rule-down">↓</button>
              <button className="small" onClick={() => setEditing(r)} data-testid="rule-edit">{t("admin.edit")}</button>
              <button className="small" onClick={() => setRemoving(r)} data-testid="rule-remove">{t("admin.delete")}</button>
            </li>
          ))}
        </ol>
      )}
      {removing && (
        <Dialog label={t("admin.confirm_delete")} testId="admin-remove-dialog" onClose={() => setRemoving(null)}>
          <h2>{t("admin.confirm_delete")}</h2>
          <p>{removing.name}</p>
          <div className="actions">
            <button onClick={() => setRemoving(null)} autoFocus data-testid="admin-remove-cancel">{t("common.cancel")}</button>
            <button className="danger" onClick={() => void remove(removing)} data-testid="admin-remove-confirm">{t("admin.delete")}</button>
          </div>
        </Dialog>
      )}
    </>
  );
}

export function ruleSections(_ctx: Ctx): Section[] {
  return [
    {
      key: "rules",
      title: "rt.rules",
      permission: "manage_rules",
      load: async () => ({ rows: [], next: null }),
      id: () => "",
      columns: [],
      fields: [],
      page: (_c, lookups) => <RulesPage lookups={lookups} />,
    },
  ];
}
