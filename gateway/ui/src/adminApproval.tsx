import { FormEvent, useState } from "react";
import { api, ApiError } from "./api";
import { Approver, CONDITION_KINDS, Condition, ConditionKind, MAX_STAGES, Policy, Stage } from "./approvalTypes";
import { Ctx, Lookups, Row, Section, str } from "./adminTypes";
import { DateTimeInput } from "./DateTimeInput";
import { Dialog } from "./Dialog";
import { errorText } from "./errors";
import { useFormat } from "./format";
import { Key, T, useI18n } from "./i18n";

// Administration of approval before send (issue 17): the approval policies — 1 to 3
// stages of approvers (operators, roles, the inbox's members who may approve), N of them,
// a deadline, the conditions that also require approval, the skip list, self-approval —
// for the tenant or one inbox; and, on an operator, "always needs approval until <date>".
// The approval service validates a policy again and names the field it refuses.

const blankStage = (): Stage => ({ name: "", approvers: [{ kind: "inbox_members", id: "" }], required: 1, deadline_minutes: 0 });
const blankPolicy = (): Policy => ({
  inbox_id: null,
  name: "",
  stages: [blankStage()],
  conditions: [],
  skip: [],
  allow_self_approval: false,
});

function approverName(a: Approver, l: Lookups, t: T): string {
  if (a.kind === "inbox_members") return t("pol.kind.inbox_members");
  const opts = a.kind === "operator" ? l.operators : l.roles;
  return opts.find((o) => o.value === a.id)?.label ?? a.id;
}

/** The server's field (`stages[1].approvers[0].id`) in the form's words. */
function fieldWords(field: string, t: T): string {
  const stage = /^stages\[(\d+)\]\.?(\w*)/.exec(field);
  if (stage) {
    const part = stage[2] === "approvers" ? t("pol.approvers") : stage[2] === "required" ? t("pol.required") : stage[2] === "deadline_minutes" ? t("pol.deadline") : "";
    return [t("appr.stage", { n: Number(stage[1]) + 1 }), part].filter(Boolean).join(" · ");
  }
  if (field.startsWith("stages")) return t("pol.stages");
  if (field.startsWith("conditions")) return t("pol.conditions");
  if (field.startsWith("skip")) return t("pol.skip");
  if (field === "name") return t("pol.name");
  if (field === "inbox_id") return t("pol.scope");
  return field;
}

function ApproverRow({ a, set, remove, lookups }: { a: Approver; set: (a: Approver) => void; remove: () => void; lookups: Lookups }) {
  const { t } = useI18n();
  const opts = a.kind === "operator" ? lookups.operators : a.kind === "role" ? lookups.roles : [];
  return (
    <div className="row gap" data-testid="approver">
      <select value={a.kind} onChange={(e) => set({ kind: e.target.value as Approver["kind"], id: "" })} data-testid="approver-kind">
        {(["inbox_members", "operator", "role"] as const).map((k) => (
          <option key={k} value={k}>{t(`pol.kind.${k}`)}</option>
        ))}
      </select>
      {a.kind !== "inbox_members" && (
        <select value={a.id} onChange={(e) => set({ ...a, id: e.target.value })} data-testid="approver-id">
          <option value="">—</option>
          {opts.map((o) => (
            <option key={o.value} value={o.value}>{o.label}</option>
          ))}
        </select>
      )}
      <button type="button" className="link small" onClick={remove}>{t("pol.remove")}</button>
    </div>
  );
}

function ConditionRow({ c, set, remove }: { c: Condition; set: (c: Condition) => void; remove: () => void }) {
  const { t } = useI18n();
  const needsValues = c.kind !== "attachment" && c.kind !== "recipients_more_than";
  return (
    <div className="policy-box" data-testid="condition">
      <div className="row gap">
        <select value={c.kind} onChange={(e) => set({ kind: e.target.value as ConditionKind, values: [], count: 0 })} data-testid="condition-kind">
          {CONDITION_KINDS.map((k) => (
            <option key={k} value={k}>{t(`pol.cond.${k}` as Key)}</option>
          ))}
        </select>
        {c.kind === "recipients_more_than" && (
          <input type="number" min={0} value={c.count} onChange={(e) => set({ ...c, count: Number(e.target.value) })} data-testid="condition-count" />
        )}
        <span className="spacer" />
        <button type="button" className="link small" onClick={remove}>{t("pol.remove")}</button>
      </div>
      {needsValues && (
        <textarea
          rows={2}
          placeholder={t("pol.values")}
          value={c.values.join("\n")}
          onChange={(e) => set({ ...c, values: e.target.value.split("\n").map((x) => x.trim()).filter(Boolean) })}
          data-testid="condition-values"
        />
      )}
    </div>
  );
}

export function PolicyForm({ row, lookups, done }: { row: Row | "new"; lookups: Lookups; done: (saved: boolean) => void }) {
  const { t } = useI18n();
  const [p, setP] = useState<Policy>(() => (row === "new" ? blankPolicy() : (structuredClone(row) as unknown as Policy)));
  const [error, setError] = useState<{ text: string; field: string } | null>(null);
  const [tooMany, setTooMany] = useState(false);
  const stored = row !== "new" && !(row as Row).builtin && !!(row as Row).id;

  const setStage = (i: number, s: Stage) => setP({ ...p, stages: p.stages.map((x, k) => (k === i ? s : x)) });
  const addStage = () => {
    if (p.stages.length >= MAX_STAGES) return setTooMany(true); // the fourth is refused here, before the server
    setP({ ...p, stages: [...p.stages, blankStage()] });
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (p.stages.length > MAX_STAGES) return setTooMany(true);
    const body = {
      inbox_id: p.inbox_id || null,
      name: p.name,
      stages: p.stages.map((s) => ({ ...s, required: Number(s.required) || 1, deadline_minutes: Number(s.deadline_minutes) || 0 })),
      conditions: p.conditions,
      skip: p.skip,
      allow_self_approval: p.allow_self_approval,
    };
    try {
      if (stored) await api.put(`/approval-policies/${(row as Row).id}`, { ...body, version: p.version });
      else await api.post("/approval-policies", body);
      done(true);
    } catch (err) {
      const field = err instanceof ApiError ? (err.field ?? "") : "";
      const text = errorText(err, t);
      setError({ text: field ? t("pol.field", { field: fieldWords(field, t), text }) : text, field });
    }
  };

  const stageError = (i: number) => (error && error.field.startsWith(`stages[${i}]`) ? error.text : "");
  return (
    <form className="card form policy-form" onSubmit={submit} data-testid="policy-form">
      {error && <p className="error" role="alert" data-testid="policy-error" data-field={error.field}>{error.text}</p>}
      <div className="field">
        <label htmlFor="pol-name">{t("pol.name")}</label>
        <input id="pol-name" value={p.name} onChange={(e) => setP({ ...p, name: e.target.value })} data-testid="policy-name" />
      </div>
      <div className="field">
        <label htmlFor="pol-scope">{t("pol.scope")}</label>
        <select id="pol-scope" value={p.inbox_id ?? ""} onChange={(e) => setP({ ...p, inbox_id: e.target.value || null })} data-testid="policy-scope">
          <option value="">{t("pol.tenant")}</option>
          {lookups.inboxes.map((o) => (
            <option key={o.value} value={o.value}>{o.label}</option>
          ))}
        </select>
      </div>
      <div className="field">
        <span>{t("pol.stages")}</span>
        <div>
          {p.stages.map((s, i) => (
            <fieldset key={i} className="policy-box" data-testid="stage">
              <legend>{t("appr.stage", { n: i + 1 })}</legend>
              {stageError(i) && <p className="error small" data-testid="stage-error">{stageError(i)}</p>}
              <input placeholder={t("pol.stage_name")} value={s.name} onChange={(e) => setStage(i, { ...s, name: e.target.value })} data-testid="stage-name" />
              <div className="small muted">{t("pol.approvers")}</div>
              {s.approvers.map((a, k) => (
                <ApproverRow
                  key={k}
                  a={a}
                  lookups={lookups}
                  set={(x) => setStage(i, { ...s, approvers: s.approvers.map((y, j) => (j === k ? x : y)) })}
                  remove={() => setStage(i, { ...s, approvers: s.approvers.filter((_, j) => j !== k) })}
                />
              ))}
              <button type="button" className="link small" onClick={() => setStage(i, { ...s, approvers: [...s.approvers, { kind: "operator", id: "" }] })} data-testid="add-approver">
                + {t("pol.add_approver")}
              </button>
              <div className="row gap wrap">
                <label className="check">
                  {t("pol.required")}{" "}
                  <input type="number" min={1} value={s.required} onChange={(e) => setStage(i, { ...s, required: Number(e.target.value) })} data-testid="stage-required" />
                </label>
                <label className="check">
                  {t("pol.deadline")}{" "}
                  <input type="number" min={0} value={s.deadline_minutes} onChange={(e) => setStage(i, { ...s, deadline_minutes: Number(e.target.value) })} data-testid="stage-deadline" />
                </label>
                <span className="spacer" />
                {p.stages.length > 1 && (
                  <button type="button" className="link small" onClick={() => { setTooMany(false); setP({ ...p, stages: p.stages.filter((_, k) => k !== i) }); }}>
                    {t("pol.remove")}
                  </button>
                )}
              </div>
            </fieldset>
          ))}
          <button type="button" onClick={addStage} data-testid="add-stage">+ {t("pol.add_stage")}</button>
          {tooMany && <p className="error small" role="alert" data-testid="too-many-stages">{t("pol.max_stages")}</p>}
        </div>
      </div>
      <div className="field">
        <span>{t("pol.conditions")}</span>
        <div>
          {p.conditions.map((c, i) => (
            <ConditionRow
              key={i}
              c={c}
              set={(x) => setP({ ...p, conditions: p.conditions.map((y, k) => (k === i ? x : y)) })}
              remove={() => setP({ ...p, conditions: p.conditions.filter((_, k) => k !== i) })}
            />
          ))}
          <button type="button" className="link small" onClick={() => setP({ ...p, conditions: [...p.conditions, { kind: "words", values: [], count: 0 }] })} data-testid="add-condition">
            + {t("pol.add_condition")}
          </button>
        </div>
      </div>
      <div className="field">
        <span>{t("pol.skip")}</span>
        <div>
          {p.skip.map((a, i) => (
            <ApproverRow
              key={i}
              a={a}
              lookups={lookups}
              set={(x) => setP({ ...p, skip: p.skip.map((y, k) => (k === i ? { kind: x.kind === "role" ? "role" : "operator", id: x.id } : y)) })}
              remove={() => setP({ ...p, skip: p.skip.filter((_, k) => k !== i) })}
            />
          ))}
          <button type="button" className="link small" onClick={() => setP({ ...p, skip: [...p.skip, { kind: "role", id: "" }] })} data-testid="add-skip">
            + {t("pol.add_skip")}
          </button>
        </div>
      </div>
      <div className="field">
        <label htmlFor="pol-self">{t("pol.self")}</label>
        <input id="pol-self" type="checkbox" checked={p.allow_self_approval} onChange={(e) => setP({ ...p, allow_self_approval: e.target.checked })} />
      </div>
      <div className="actions">
        <button type="button" onClick={() => done(false)}>{t("common.cancel")}</button>
        <button className="primary" type="submit" data-testid="admin-save">{t("common.save")}</button>
      </div>
    </form>
  );
}

export function approvalSections({ t }: Ctx): Section[] {
  return [
    {
      key: "approval",
      title: "admin.approval_policies",
      permission: "manage_rules",
      help: "admin.approval_help",
      load: async () => ({ rows: (await api.get<{ policies: Row[] }>("/approval-policies")).policies, next: null }),
      id: (r) => str(r.id) || `builtin-${str(r.inbox_id)}`,
      columns: [
        { label: "pol.name", value: (r) => `${str(r.name)}${r.builtin ? ` (${t("pol.builtin")})` : ""}` },
        { label: "pol.scope", value: (r, l) => (r.inbox_id ? (l.inboxes.find((o) => o.value === r.inbox_id)?.label ?? str(r.inbox_id)) : t("pol.tenant")) },
        {
          label: "pol.stages",
          value: (r, l) =>
            ((r.stages ?? []) as Stage[])
              .map((s, i) => `${i + 1}. ${s.name ? `${s.name}: ` : ""}${s.approvers.map((a) => approverName(a, l, t)).join(", ")}`)
              .join(" → "),
        },
        { label: "pol.self", value: (r) => (r.allow_self_approval ? "✓" : "—") },
      ],
      fields: [],
      editor: (row, lookups, done) => <PolicyForm row={row} lookups={lookups} done={done} />,
      remove: (r) => api.del(`/approval-policies/${r.id}`),
      removable: (r) => !r.builtin,
    },
  ];
}

// -- "always needs approval until <date>" on an operator ---------------------------------

/** The operators' rows with their flag (`approval_until`), where the caller may read them. */
export async function withFlags(rows: Row[]): Promise<Row[]> {
  try {
    const flags = (await api.get<{ flags: { operator_id: string; until: string | null }[] }>("/approval-flags")).flags;
    const until = new Map(flags.map((f) => [f.operator_id, f.until]));
    return rows.map((r) => ({ ...r, approval_until: until.get(str(r.id)) ?? null }));
  } catch {
    return rows;
  }
}

export function FlagButton({ row, say, reload }: { row: Row; say: (s: string) => void; reload: () => void }) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const [open, setOpen] = useState(false);
  const [until, setUntil] = useState(str(row.approval_until));
  const name = str(row.display_name);
  const save = async (value: string | null) => {
    try {
      await api.put(`/operators/${row.id}/approval-flag`, { until: value });
      setOpen(false);
      say(value ? t("flag.saved", { name, at: dateTime(value) }) : t("flag.cleared", { name }));
      reload();
    } catch (e) {
      say(errorText(e, t));
    }
  };
  return (
    <>
      <button className="small" onClick={() => setOpen(true)} data-testid="flag-open">{t("flag.set")}</button>
      {open && (
        <Dialog label={t("flag.title", { name })} testId="flag-dialog" onClose={() => setOpen(false)}>
          <h2>{t("flag.title", { name })}</h2>
          <DateTimeInput value={until} onChange={setUntil} fromDays={0} toDays={365} dayOnly="end" testId="flag-until" label={t("flag.column")} />
          <div className="actions">
            {row.approval_until ? (
              <button onClick={() => void save(null)} data-testid="flag-clear">{t("flag.clear")}</button>
            ) : null}
            <span className="spacer" />
            <button onClick={() => setOpen(false)}>{t("common.cancel")}</button>
            <button className="primary" disabled={!until} onClick={() => void save(until)} data-testid="flag-save">{t("common.save")}</button>
          </div>
        </Dialog>
      )}
    </>
  );
}
