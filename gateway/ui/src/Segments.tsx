// Contacts → セグメント (issue 20, OUT-6): saved segments with how many contacts each
// matches now; the editor — match all or any of the conditions, each a field (the built-in
// ones and the tenant's custom fields), an operator fitting the field's type and a value —
// shows the count while the conditions change (a moment after the last change).
import { FormEvent, useEffect, useState } from "react";
import { api, ApiError } from "./api";
import { go } from "./App";
import { errorText } from "./errors";
import { useFormat } from "./format";
import { Key, useI18n } from "./i18n";
import { BUILTIN_FIELDS, complete, Condition, FieldDef, kindOf, NO_VALUE, opsFor, Segment, useFieldDefs, useLists } from "./outreachTypes";

const COUNT_DELAY_MS = 400;

export function SegmentsScreen() {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const [segments, setSegments] = useState<Segment[] | null>(null);
  const [counts, setCounts] = useState<Record<string, number>>({});
  const [notice, setNotice] = useState("");

  useEffect(() => {
    void (async () => {
      try {
        const r = await api.get<{ segments: Segment[] }>("/segments");
        setSegments(r.segments);
        for (const s of r.segments) {
          void api
            .get<{ count: number }>(`/segments/${s.id}/count`)
            .then((c) => setCounts((old) => ({ ...old, [s.id]: c.count })))
            .catch(() => {});
        }
      } catch (e) {
        setNotice(errorText(e, t));
      }
    })();
  }, [t]);

  return (
    <>
      <div className="row gap">
        <span className="spacer" />
        <button className="primary" onClick={() => go("/contacts/segments/new")} data-testid="segment-new">{t("out.segment_new")}</button>
      </div>
      {notice && <p className="notice" role="status">{notice}</p>}
      <table className="table" data-testid="segments">
        <thead>
          <tr>
            <th>{t("out.segment_name")}</th>
            <th>{t("out.conditions")}</th>
            <th>{t("out.contacts_count")}</th>
            <th>{t("out.updated_at")}</th>
          </tr>
        </thead>
        <tbody>
          {(segments ?? []).map((s) => (
            <tr key={s.id} className="clickable" onClick={() => go(`/contacts/segments/${s.id}`)} data-testid="segment-row">
              <td>{s.name}</td>
              <td>{t(s.match === "all" ? "out.match_all_n" : "out.match_any_n", { n: s.conditions.length })}</td>
              <td data-testid="segment-count">{counts[s.id] ?? "…"}</td>
              <td>{dateTime(s.updated_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {segments?.length === 0 && <p className="muted">{t("out.no_segments")}</p>}
    </>
  );
}

/** A field as the operator reads it: the built-in ones translated, a custom one by its label. */
export function fieldName(field: string, defs: FieldDef[], t: (k: Key) => string): string {
  if (field.startsWith("custom.")) return defs.find((d) => `custom.${d.key}` === field)?.label || field;
  return t(`out.field.${field}` as Key);
}

function ConditionRow({
  c,
  set,
  remove,
  defs,
  invalid,
}: {
  c: Condition;
  set: (c: Condition) => void;
  remove: () => void;
  defs: FieldDef[];
  invalid: boolean;
}) {
  const { t } = useI18n();
  const lists = useLists();
  const kind = kindOf(c.field, defs);
  const fields = [...BUILTIN_FIELDS.map((f) => f.field), ...defs.map((d) => `custom.${d.key}`)];
  const chooseField = (field: string) => {
    const ops = opsFor(field, defs);
    set({ field, op: ops.includes(c.op) ? c.op : ops[0], value: "" });
  };
  let value;
  if (NO_VALUE.has(c.op)) value = null;
  else if (c.field === "list")
    value = (
      <select value={c.value} onChange={(e) => set({ ...c, value: e.target.value })} aria-label={t("out.value")} data-testid="cond-value">
        <option value="">—</option>
        {lists.map((l) => (
          <option key={l.id} value={l.id}>{l.name}</option>
        ))}
      </select>
    );
  else if (c.field === "language")
    value = (
      <select value={c.value} onChange={(e) => set({ ...c, value: e.target.value })} aria-label={t("out.value")} data-testid="cond-value">
        <option value="">—</option>
        <option value="ja">日本語</option>
        <option value="en">English</option>
      </select>
    );
  else {
    const days = c.op === "within_days" || c.op === "not_within_days";
    const type = days || kind === "number" ? "number" : kind === "date" ? "date" : "text";
    value = (
      <input type={type} min={days ? 0 : undefined} value={c.value} onChange={(e) => set({ ...c, value: e.target.value })} aria-label={t("out.value")} data-testid="cond-value" />
    );
  }
  return (
    <div className={invalid ? "row gap cond invalid" : "row gap cond"} data-testid="condition">
      <select value={c.field} onChange={(e) => chooseField(e.target.value)} aria-label={t("out.field")} data-testid="cond-field">
        {fields.map((f) => (
          <option key={f} value={f}>{fieldName(f, defs, t)}</option>
        ))}
      </select>
      <select value={c.op} onChange={(e) => set({ ...c, op: e.target.value, value: NO_VALUE.has(e.target.value) ? "" : c.value })} aria-label={t("out.op")} data-testid="cond-op">
        {opsFor(c.field, defs).map((o) => (
          <option key={o} value={o}>{t(`out.op.${o}` as Key)}</option>
        ))}
      </select>
      {value}
      {(c.op === "within_days" || c.op === "not_within_days") && <span>{t("out.days")}</span>}
      <button type="button" className="small" onClick={remove} data-testid="cond-remove">{t("out.cond_remove")}</button>
    </div>
  );
}

const conditionIndex = (e: unknown) => {
  const m = e instanceof ApiError ? /^conditions\[(\d+)\]/.exec(e.field ?? "") : null;
  return m ? Number(m[1]) : -1;
};

export function SegmentEditor({ id: shown }: { id: string }) {
  const { t } = useI18n();
  // a new segment, once saved, is that segment: its address changes without a reload
  const [id, setId] = useState(shown);
  const [defs] = useFieldDefs();
  const [name, setName] = useState("");
  const [match, setMatch] = useState<"all" | "any">("all");
  const [conds, setConds] = useState<Condition[]>([{ field: "domain", op: "eq", value: "" }]);
  const [count, setCount] = useState<number | null>(null);
  const [counting, setCounting] = useState(false);
  const [problem, setProblem] = useState<{ text: string; index: number } | null>(null);
  const [notice, setNotice] = useState("");
  const [removing, setRemoving] = useState(false);

  useEffect(() => {
    if (shown === "new") return;
    void api
      .get<Segment>(`/segments/${shown}`)
      .then((s) => {
        setName(s.name);
        setMatch(s.match);
        setConds(s.conditions.map((c) => ({ ...c, value: c.value == null ? "" : String(c.value) })));
      })
      .catch((e) => setNotice(errorText(e, t)));
  }, [shown, t]);

  // the live count: asked a moment after the last change; an older answer is dropped
  useEffect(() => {
    let current = true;
    if (!complete(conds)) {
      setCount(null);
      setProblem(null);
      setCounting(false);
      return;
    }
    setCounting(true);
    const h = window.setTimeout(async () => {
      try {
        const r = await api.post<{ count: number }>("/segments/count", { match, conditions: conds });
        if (!current) return;
        setCount(r.count);
        setProblem(null);
      } catch (e) {
        if (!current) return;
        setCount(null);
        setProblem({ text: errorText(e, t), index: conditionIndex(e) });
      } finally {
        if (current) setCounting(false);
      }
    }, COUNT_DELAY_MS);
    return () => {
      current = false;
      window.clearTimeout(h);
    };
  }, [match, conds, t]);

  const save = async (e: FormEvent) => {
    e.preventDefault();
    try {
      const body = { name, match, conditions: conds };
      if (id === "new") {
        const s = await api.post<Segment>("/segments", body);
        setId(s.id);
        history.replaceState(null, "", `#/contacts/segments/${s.id}`);
      } else await api.patch(`/segments/${id}`, body);
      setNotice(t("common.saved"));
    } catch (err) {
      setNotice(errorText(err, t));
      setProblem({ text: errorText(err, t), index: conditionIndex(err) });
    }
  };

  const remove = async () => {
    setRemoving(false);
    try {
      await api.del(`/segments/${id}`);
      go("/contacts/segments");
    } catch (err) {
      setNotice(errorText(err, t));
    }
  };

  return (
    <form className="card" onSubmit={save} data-testid="segment-editor">
      <div className="row gap">
        <a href="#/contacts/segments">← {t("out.tab.segments")}</a>
        <span className="spacer" />
        <strong className="segment-count" data-testid="live-count" aria-live="polite">
          {count === null ? (counting ? "…" : complete(conds) ? "—" : t("out.fill_values")) : t("out.live_count", { n: count })}
        </strong>
      </div>
      {notice && <p className="notice" role="status" data-testid="segment-notice">{notice}</p>}
      <label>
        {t("out.segment_name")}
        <input value={name} onChange={(e) => setName(e.target.value)} data-testid="segment-name" />
      </label>
      <div className="row gap">
        <label className="check">
          <input type="radio" name="match" checked={match === "all"} onChange={() => setMatch("all")} data-testid="match-all" />
          {t("out.match_all")}
        </label>
        <label className="check">
          <input type="radio" name="match" checked={match === "any"} onChange={() => setMatch("any")} data-testid="match-any" />
          {t("out.match_any")}
        </label>
      </div>
      {conds.map((c, i) => (
        <ConditionRow
          key={i}
          c={c}
          defs={defs}
          invalid={problem?.index === i}
          set={(n) => setConds(conds.map((x, k) => (k === i ? n : x)))}
          remove={() => setConds(conds.filter((_, k) => k !== i))}
        />
      ))}
      {problem && <p className="error" role="alert" data-testid="segment-problem">{problem.text}</p>}
      <div className="actions">
        <button type="button" onClick={() => setConds([...conds, { field: "domain", op: "eq", value: "" }])} data-testid="cond-add">
          {t("out.cond_add")}
        </button>
        {id !== "new" && (
          <button type="button" className="danger" onClick={() => setRemoving(true)} data-testid="segment-delete">{t("admin.delete")}</button>
        )}
        <button className="primary" type="submit" data-testid="segment-save">{t("common.save")}</button>
      </div>
      {removing && (
        <div className="notice row gap" data-testid="segment-delete-confirm">
          {t("out.segment_delete_q", { name })}
          <button type="button" onClick={() => setRemoving(false)}>{t("common.cancel")}</button>
          <button type="button" className="danger" onClick={() => void remove()} data-testid="segment-delete-yes">{t("admin.delete")}</button>
        </div>
      )}
    </form>
  );
}
