import { FormEvent, useState } from "react";
import { api } from "./api";
import { Ctx, items, Lookups, Row, Section, str, whole } from "./adminTypes";
import { Key, useI18n } from "./i18n";
import { FormEnd, useDoc, Waiting } from "./routingForm";
import { about, formError } from "./routingTypes";

// Administration of assignment (issue 18, RTE-2): each inbox's strategy (manual, round
// robin, least loaded), its capacity per operator and per channel, the ordered tiers of
// who receives first (a tier widens to the next after N minutes unassigned), reassignment
// without a first reply and the fairness limit; and each operator's routing profile —
// capacity across inboxes and per channel, skills with levels, languages — beside their
// presence and load now (GET /presence).

export interface Assignment {
  inbox_id: string;
  strategy: "manual" | "round_robin" | "least_loaded";
  capacity: number | null;
  channel_capacity: Record<string, number>;
  tiers: { operator_ids: string[]; widen_after_minutes: number }[];
  reassign_after_minutes: number | null;
  max_new_per_hour: number | null;
}
export interface Profile {
  operator_id: string;
  capacity: number | null;
  channel_capacity: Record<string, number>;
  skills: { name: string; level: number }[];
  languages: string[];
}
interface Presence {
  operator_id: string;
  status: string;
  effective: string;
  load: number;
  capacity: number | null;
}

const STRATEGIES = ["manual", "round_robin", "least_loaded"] as const;

/** A number input where empty means "no limit" (null). */
function Limit({ id, value, set, min = 0, testId, none = "asg.no_limit" }: { id: string; value: number | null; set: (v: number | null) => void; min?: number; testId: string; none?: Key }) {
  const { t } = useI18n();
  return (
    <input
      id={id}
      type="number"
      min={min}
      value={value ?? ""}
      placeholder={t(none)}
      onChange={(e) => set(e.target.value === "" ? null : Number(e.target.value))}
      data-testid={testId}
    />
  );
}

/** Capacity per channel as rows of a channel name and a number. */
function ChannelCaps({ value, set, prefix, error }: { value: Record<string, number>; set: (v: Record<string, number>) => void; prefix: string; error: { field: string } | null }) {
  const { t } = useI18n();
  const rows = Object.entries(value);
  const put = (list: [string, number][]) => set(Object.fromEntries(list));
  return (
    <div data-testid="channel-caps">
      {rows.map(([k, v], i) => (
        <div key={i} className={about(error, `${prefix}.${k}`) ? "row gap bad" : "row gap"}>
          <input size={10} aria-label={t("asg.channel")} value={k} onChange={(e) => put(rows.map((r, j) => (j === i ? [e.target.value, r[1]] : r)))} />
          <input type="number" min={0} aria-label={t("rf.capacity")} value={v} onChange={(e) => put(rows.map((r, j) => (j === i ? [r[0], Number(e.target.value)] : r)))} />
          <button type="button" className="link small" onClick={() => put(rows.filter((_, j) => j !== i))}>{t("pol.remove")}</button>
        </div>
      ))}
      <button type="button" className="link small" onClick={() => put([...rows, [rows.some((r) => r[0] === "mail") ? "form" : "mail", 1]])}>
        + {t("asg.add_channel")}
      </button>
    </div>
  );
}

function AssignmentForm({ inbox, lookups, done }: { inbox: Row; lookups: Lookups; done: (saved: boolean) => void }) {
  const { t } = useI18n();
  const { doc: a, setDoc: setA, error, setError } = useDoc<Assignment>(`/inboxes/${inbox.id}/assignment`);
  if (!a) return <Waiting error={error} />;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    try {
      await api.put(`/inboxes/${inbox.id}/assignment`, {
        strategy: a.strategy,
        capacity: a.capacity,
        channel_capacity: a.channel_capacity,
        tiers: a.tiers,
        reassign_after_minutes: a.reassign_after_minutes,
        max_new_per_hour: a.max_new_per_hour,
      });
      done(true);
    } catch (err) {
      setError(formError(err, t));
    }
  };
  const setTier = (i: number, x: Assignment["tiers"][number]) => setA({ ...a, tiers: a.tiers.map((y, k) => (k === i ? x : y)) });
  return (
    <form className="card form" onSubmit={submit} data-testid="assignment-form">
      <h2>{t("asg.title", { name: str(inbox.name) })}</h2>
      <div className="field">
        <label htmlFor="asg-strategy">{t("rf.strategy")}</label>
        <select id="asg-strategy" value={a.strategy} onChange={(e) => setA({ ...a, strategy: e.target.value as Assignment["strategy"] })} data-testid="asg-strategy">
          {STRATEGIES.map((s) => (
            <option key={s} value={s}>{t(`asg.s.${s}` as Key)}</option>
          ))}
        </select>
      </div>
      <div className={about(error, "capacity") ? "field bad" : "field"}>
        <label htmlFor="asg-capacity">{t("asg.inbox_capacity")}</label>
        <Limit id="asg-capacity" value={a.capacity} set={(capacity) => setA({ ...a, capacity })} testId="asg-capacity" />
      </div>
      <div className="field">
        <span>{t("rf.channel_capacity")}</span>
        <ChannelCaps value={a.channel_capacity} set={(channel_capacity) => setA({ ...a, channel_capacity })} prefix="channel_capacity" error={error} />
      </div>
      <div className="field">
        <span>{t("rf.tiers")}</span>
        <div>
          <p className="muted small">{t("asg.tiers_help")}</p>
          {a.tiers.map((tier, i) => (
            <fieldset key={i} className={about(error, `tiers[${i}]`) ? "policy-box bad" : "policy-box"} data-testid="tier">
              <legend>{t("asg.tier", { n: i + 1 })}</legend>
              <div className="checks">
                {lookups.operators.map((o) => (
                  <label key={o.value} className="check">
                    <input
                      type="checkbox"
                      checked={tier.operator_ids.includes(o.value)}
                      onChange={(e) =>
                        setTier(i, {
                          ...tier,
                          operator_ids: e.target.checked ? [...tier.operator_ids, o.value] : tier.operator_ids.filter((x) => x !== o.value),
                        })
                      }
                    />
                    {o.label}
                  </label>
                ))}
              </div>
              <div className="row gap">
                {i < a.tiers.length - 1 && (
                  <label className="check">
                    {t("rf.widen_after_minutes")}
                    <input type="number" min={0} value={tier.widen_after_minutes} onChange={(e) => setTier(i, { ...tier, widen_after_minutes: Number(e.target.value) })} data-testid="tier-widen" />
                  </label>
                )}
                <span className="spacer" />
                <button type="button" className="small" disabled={i === 0} onClick={() => setA({ ...a, tiers: swap(a.tiers, i, i - 1) })} aria-label={t("asg.tier_up")}>↑</button>
                <button type="button" className="small" disabled={i === a.tiers.length - 1} onClick={() => setA({ ...a, tiers: swap(a.tiers, i, i + 1) })} aria-label={t("asg.tier_down")}>↓</button>
                <button type="button" className="link small" onClick={() => setA({ ...a, tiers: a.tiers.filter((_, k) => k !== i) })}>{t("pol.remove")}</button>
              </div>
            </fieldset>
          ))}
          <button type="button" className="link small" onClick={() => setA({ ...a, tiers: [...a.tiers, { operator_ids: [], widen_after_minutes: 10 }] })} data-testid="add-tier">
            + {t("asg.add_tier")}
          </button>
        </div>
      </div>
      <div className={about(error, "reassign_after_minutes") ? "field bad" : "field"}>
        <label htmlFor="asg-reassign">{t("rf.reassign_after_minutes")}</label>
        <Limit id="asg-reassign" min={1} value={a.reassign_after_minutes} set={(v) => setA({ ...a, reassign_after_minutes: v })} testId="asg-reassign" none="asg.never" />
      </div>
      <div className={about(error, "max_new_per_hour") ? "field bad" : "field"}>
        <label htmlFor="asg-fair">{t("rf.max_new_per_hour")}</label>
        <Limit id="asg-fair" min={1} value={a.max_new_per_hour} set={(v) => setA({ ...a, max_new_per_hour: v })} testId="asg-fair" />
      </div>
      <FormEnd error={error} done={done} />
    </form>
  );
}

function swap<X>(list: X[], i: number, j: number): X[] {
  const out = [...list];
  [out[i], out[j]] = [out[j], out[i]];
  return out;
}

function ProfileForm({ operator, done }: { operator: Row; done: (saved: boolean) => void }) {
  const { t } = useI18n();
  const [languages, setLanguages] = useState("");
  const { doc: p, setDoc: setP, error, setError } = useDoc<Profile>(`/operators/${operator.id}/routing`, (x) =>
    setLanguages(x.languages.join(", ")),
  );
  if (!p) return <Waiting error={error} />;
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    try {
      await api.put(`/operators/${operator.id}/routing`, {
        capacity: p.capacity,
        channel_capacity: p.channel_capacity,
        skills: p.skills,
        languages: languages.split(/[,\s]+/).map((x) => x.trim().toLowerCase()).filter(Boolean),
      });
      done(true);
    } catch (err) {
      setError(formError(err, t));
    }
  };
  const setSkill = (i: number, s: Profile["skills"][number]) => setP({ ...p, skills: p.skills.map((x, k) => (k === i ? s : x)) });
  return (
    <form className="card form" onSubmit={submit} data-testid="profile-form">
      <h2>{t("asg.profile_title", { name: str(operator.display_name) })}</h2>
      <div className={about(error, "capacity") ? "field bad" : "field"}>
        <label htmlFor="op-capacity">{t("asg.operator_capacity")}</label>
        <Limit id="op-capacity" value={p.capacity} set={(capacity) => setP({ ...p, capacity })} testId="op-capacity" />
      </div>
      <div className="field">
        <span>{t("rf.channel_capacity")}</span>
        <ChannelCaps value={p.channel_capacity} set={(channel_capacity) => setP({ ...p, channel_capacity })} prefix="channel_capacity" error={error} />
      </div>
      <div className="field">
        <span>{t("rf.skills")}</span>
        <div>
          {p.skills.map((s, i) => (
            <div key={i} className={about(error, `skills.${i}`) ? "row gap bad" : "row gap"} data-testid="skill">
              <input value={s.name} aria-label={t("rf.name")} onChange={(e) => setSkill(i, { ...s, name: e.target.value })} data-testid="skill-name" />
              <select aria-label={t("rf.level")} value={s.level} onChange={(e) => setSkill(i, { ...s, level: Number(e.target.value) })} data-testid="skill-level">
                {[1, 2, 3, 4, 5].map((n) => (
                  <option key={n} value={n}>{t("asg.level", { n })}</option>
                ))}
              </select>
              <button type="button" className="link small" onClick={() => setP({ ...p, skills: p.skills.filter((_, k) => k !== i) })}>{t("pol.remove")}</button>
            </div>
          ))}
          <button type="button" className="link small" onClick={() => setP({ ...p, skills: [...p.skills, { name: "", level: 3 }] })} data-testid="add-skill">
            + {t("asg.add_skill")}
          </button>
        </div>
      </div>
      <div className={about(error, "languages") ? "field bad" : "field"}>
        <label htmlFor="op-langs">{t("rf.languages")}</label>
        <input id="op-langs" value={languages} placeholder="ja, en" onChange={(e) => setLanguages(e.target.value)} data-testid="op-languages" />
      </div>
      <FormEnd error={error} done={done} />
    </form>
  );
}

export function assignSections({ t }: Ctx): Section[] {
  return [
    {
      key: "assignment",
      title: "rt.assignment",
      permission: "manage_inboxes",
      help: "rt.assignment_help",
      load: async () => {
        const inboxes = await items("/inboxes", { all: "true" });
        const docs = await Promise.all(inboxes.map((i) => api.get<Assignment>(`/inboxes/${i.id}/assignment`).catch(() => null)));
        return { rows: inboxes.map((i, k) => ({ ...i, assignment: docs[k] })), next: null };
      },
      id: (r) => str(r.id),
      columns: [
        { label: "admin.f.name", value: (r) => str(r.name) },
        { label: "rf.strategy", value: (r) => { const a = r.assignment as Assignment | null; return a ? t(`asg.s.${a.strategy}` as Key) : "—"; } },
        { label: "asg.inbox_capacity", value: (r) => { const a = r.assignment as Assignment | null; return a?.capacity == null ? t("asg.no_limit") : String(a.capacity); } },
        { label: "rf.tiers", value: (r) => String((r.assignment as Assignment | null)?.tiers.length ?? 0) },
      ],
      fields: [],
      editOnly: true,
      editor: (row, lookups, done) => (row === "new" ? null : <AssignmentForm inbox={row} lookups={lookups} done={done} />),
    },
    {
      key: "operator-routing",
      title: "rt.operator_routing",
      permission: "manage_operators",
      help: "rt.operator_routing_help",
      load: async () => {
        const [ops, presence] = await Promise.all([items("/operators"), api.get<{ operators: Presence[] }>("/presence").catch(() => ({ operators: [] }))]);
        const by = new Map(presence.operators.map((p) => [p.operator_id, p]));
        return whole(Promise.resolve(ops.map((o) => ({ ...o, presence: by.get(str(o.id)) ?? null }))));
      },
      id: (r) => str(r.id),
      columns: [
        { label: "admin.f.display_name", value: (r) => str(r.display_name) },
        { label: "pres.column", value: (r) => { const p = r.presence as Presence | null; return p ? t(`pres.${p.effective}` as Key) : "—"; } },
        {
          label: "asg.load",
          value: (r) => {
            const p = r.presence as Presence | null;
            return p ? `${p.load} / ${p.capacity ?? "∞"}` : "—";
          },
        },
      ],
      fields: [],
      editOnly: true,
      editor: (row, _l, done) => (row === "new" ? null : <ProfileForm operator={row} done={done} />),
    },
  ];
}
