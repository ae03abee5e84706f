import { FormEvent, ReactNode, useEffect, useState } from "react";
import { api, ApiError } from "./api";
import { Ctx, items, Option, Section, str } from "./adminTypes";
import { errorText } from "./errors";
import { useFormat } from "./format";
import { Key, useI18n } from "./i18n";

// Administration → an inbox's satisfaction survey (issue 20, OUT-5): one settings object
// per inbox (GET/PUT /inboxes/{id}/survey, manage_inboxes), read when the inbox is chosen
// and saved whole. A refusal is shown at the field the server names; nothing is saved then.
// Up to 4 additional questions (ja and en, the same 1–5 scale, optional for the customer)
// are added, removed and reordered here; each keeps the id it was made with, which the
// reports group its answers by.

export const QUESTIONS_MAX = 4;

export interface Question {
  id: string;
  text_ja: string;
  text_en: string;
}

/** A new question's id: short, unique among the inbox's, never reused for another text. */
const newId = (taken: Question[]) => {
  for (;;) {
    const id = `q-${Math.random().toString(36).slice(2, 8)}`;
    if (!taken.some((q) => q.id === id)) return id;
  }
};

interface Settings {
  inbox_id: string;
  enabled: boolean;
  question_ja: string;
  question_en: string;
  scale_style: string;
  delay_minutes: number;
  skip_auto_resolved: boolean;
  skip_spam_trash: boolean;
  skip_labels: string[];
  contact_days: number;
  questions: Question[];
  updated_at?: string;
}

/** The form's values: numbers and the labels as typed. */
type Form = Omit<Settings, "delay_minutes" | "contact_days" | "skip_labels"> & {
  delay_minutes: string;
  contact_days: string;
  skip_labels: string;
};

const toForm = (s: Settings): Form => ({
  ...s,
  questions: s.questions ?? [],
  delay_minutes: String(s.delay_minutes),
  contact_days: String(s.contact_days),
  skip_labels: s.skip_labels.join("\n"),
});

/** A whole number as a number; anything else as typed, for the server to refuse at its field. */
const whole = (v: string): number | string => (/^\s*-?\d+\s*$/.test(v) ? Number(v) : v);

function toBody(f: Form): Record<string, unknown> {
  return {
    enabled: f.enabled,
    question_ja: f.question_ja,
    question_en: f.question_en,
    scale_style: f.scale_style,
    delay_minutes: whole(f.delay_minutes),
    skip_auto_resolved: f.skip_auto_resolved,
    skip_spam_trash: f.skip_spam_trash,
    skip_labels: f.skip_labels.split("\n").map((x) => x.trim()).filter(Boolean),
    contact_days: whole(f.contact_days),
    questions: f.questions,
  };
}

type Refusal = { field: string; text: string } | null;

function SurveyPage() {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const [inbox, setInbox] = useState("");
  const [form, setForm] = useState<Form | null>(null);
  const [refusal, setRefusal] = useState<Refusal>(null);
  const [notice, setNotice] = useState("");
  // every inbox of the tenant (null while they are read)
  const [inboxes, setInboxes] = useState<Option[] | null>(null);
  useEffect(() => {
    let gone = false;
    items("/inboxes", { all: "true" })
      .then((rows) => !gone && setInboxes(rows.map((r) => ({ value: str(r.id), label: str(r.name) }))))
      .catch((e) => !gone && (setInboxes([]), setNotice(errorText(e, t))));
    return () => {
      gone = true;
    };
  }, [t]);
  const chosen = inbox || inboxes?.[0]?.value || "";

  useEffect(() => {
    if (!chosen) return;
    let gone = false;
    setForm(null);
    setRefusal(null);
    setNotice("");
    api
      .get<Settings>(`/inboxes/${chosen}/survey`)
      .then((s) => !gone && setForm(toForm(s)))
      .catch((e) => !gone && setNotice(errorText(e, t)));
    return () => {
      gone = true;
    };
  }, [chosen, t]);

  const set = (patch: Partial<Form>) => setForm((old) => (old ? { ...old, ...patch } : old));

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!form) return;
    setNotice("");
    setRefusal(null);
    try {
      const saved = await api.put<Settings>(`/inboxes/${chosen}/survey`, toBody(form));
      setForm(toForm(saved));
      setNotice(t("common.saved"));
      window.dispatchEvent(new Event("sb:inboxes")); // "resolve without survey" follows at once
    } catch (err) {
      const field = err instanceof ApiError ? (err.field ?? "") : "";
      if (field && field in form) setRefusal({ field, text: errorText(err, t) });
      else setNotice(errorText(err, t));
    }
  };

  // one field: its label, its input, and the server's refusal when it names it
  const row = (name: keyof Form, input: ReactNode, check = false) => {
    const wrong = refusal?.field === name;
    return (
      <div className={check ? "field check" : "field"} key={name} data-field={name}>
        {check ? (
          <label className="check">
            {input} {t(`survey.f.${name}` as Key)}
          </label>
        ) : (
          <>
            <label htmlFor={`survey-${name}`}>{t(`survey.f.${name}` as Key)}</label>
            {input}
          </>
        )}
        {wrong && (
          <p className="error" role="alert" id={`survey-${name}-error`} data-testid="survey-error" data-field={name}>
            {refusal.text}
          </p>
        )}
      </div>
    );
  };
  const invalid = (name: keyof Form) =>
    refusal?.field === name ? { "aria-invalid": true, "aria-describedby": `survey-${name}-error` } : {};
  const text = (name: "question_ja" | "question_en") => (
    <input
      id={`survey-${name}`}
      value={form?.[name] ?? ""}
      maxLength={500}
      onChange={(e) => set({ [name]: e.target.value })}
      data-testid={`survey-${name}`}
      {...invalid(name)}
    />
  );
  const number = (name: "delay_minutes" | "contact_days") => (
    <input
      id={`survey-${name}`}
      type="number"
      value={form?.[name] ?? ""}
      onChange={(e) => set({ [name]: e.target.value })}
      data-testid={`survey-${name}`}
      {...invalid(name)}
    />
  );
  const box = (name: "enabled" | "skip_auto_resolved" | "skip_spam_trash") => (
    <input
      type="checkbox"
      checked={!!form?.[name]}
      onChange={(e) => set({ [name]: e.target.checked })}
      data-testid={`survey-${name}`}
    />
  );

  return (
    <>
      <h1>{t("admin.survey")}</h1>
      <p className="muted small">{t("survey.help")}</p>
      {inboxes === null && <p className="muted">{t("list.loading")}</p>}
      {inboxes?.length === 0 && <p className="muted">{t("survey.no_inboxes")}</p>}
      {!!inboxes?.length && (
        <div className="field">
          <label htmlFor="survey-inbox">{t("survey.inbox")}</label>
          <select id="survey-inbox" value={chosen} onChange={(e) => setInbox(e.target.value)} data-testid="survey-inbox">
            {inboxes.map((o) => (
              <option key={o.value} value={o.value}>{o.label}</option>
            ))}
          </select>
        </div>
      )}
      {notice && <p className="notice" role="status" data-testid="admin-notice">{notice}</p>}
      {form && (
        <form className="card form" onSubmit={submit} data-testid="survey-form">
          {row("enabled", box("enabled"), true)}
          {row("question_ja", text("question_ja"))}
          {row("question_en", text("question_en"))}
          {row(
            "scale_style",
            <select
              id="survey-scale_style"
              value={form.scale_style}
              onChange={(e) => set({ scale_style: e.target.value })}
              data-testid="survey-scale_style"
            >
              <option value="stars">{t("survey.style.stars")}</option>
              <option value="faces">{t("survey.style.faces")}</option>
            </select>,
          )}
          <QuestionsEditor
            questions={form.questions}
            onChange={(questions) => set({ questions })}
            refusal={refusal?.field === "questions" ? refusal.text : ""}
          />
          {row("delay_minutes", number("delay_minutes"))}
          <fieldset>
            <legend>{t("survey.suppress")}</legend>
            {row("skip_auto_resolved", box("skip_auto_resolved"), true)}
            {row("skip_spam_trash", box("skip_spam_trash"), true)}
            {row(
              "skip_labels",
              <textarea
                id="survey-skip_labels"
                rows={3}
                value={form.skip_labels}
                onChange={(e) => set({ skip_labels: e.target.value })}
                data-testid="survey-skip_labels"
                {...invalid("skip_labels")}
              />,
            )}
            {row("contact_days", number("contact_days"))}
          </fieldset>
          <div className="actions">
            {form.updated_at && <span className="muted small">{t("survey.updated", { at: dateTime(form.updated_at) })}</span>}
            <span className="spacer" />
            <button className="primary" type="submit" data-testid="admin-save">{t("common.save")}</button>
          </div>
        </form>
      )}
    </>
  );
}

/** The additional questions: each its texts in both languages, moved up or down, removed. */
function QuestionsEditor({
  questions,
  onChange,
  refusal,
}: {
  questions: Question[];
  onChange: (q: Question[]) => void;
  refusal: string;
}) {
  const { t } = useI18n();
  const edit = (i: number, patch: Partial<Question>) => onChange(questions.map((q, j) => (j === i ? { ...q, ...patch } : q)));
  const move = (i: number, by: number) => {
    const next = [...questions];
    [next[i], next[i + by]] = [next[i + by], next[i]];
    onChange(next);
  };
  return (
    <fieldset data-testid="survey-questions" data-field="questions">
      <legend>{t("survey.questions")}</legend>
      <p className="muted small">{t("survey.questions_help")}</p>
      {questions.map((q, i) => (
        <div className="card" key={q.id} data-testid="survey-question" data-id={q.id} role="group" aria-label={t("survey.question_n", { n: i + 1 })}>
          {(["ja", "en"] as const).map((lang) => (
            <div className="field" key={lang}>
              <label htmlFor={`survey-q-${q.id}-${lang}`}>{t(`survey.q.text_${lang}`, { n: i + 1 })}</label>
              <input
                id={`survey-q-${q.id}-${lang}`}
                value={q[`text_${lang}`]}
                maxLength={500}
                onChange={(e) => edit(i, { [`text_${lang}`]: e.target.value })}
                data-testid={`survey-q-text_${lang}`}
                {...(refusal ? { "aria-invalid": true, "aria-describedby": "survey-questions-error" } : {})}
              />
            </div>
          ))}
          <div className="actions">
            <span className="muted small">{t("survey.q.id", { id: q.id })}</span>
            <span className="spacer" />
            <button type="button" className="small" disabled={i === 0} onClick={() => move(i, -1)} aria-label={t("survey.q.up", { n: i + 1 })} data-testid="survey-q-up">↑</button>
            <button type="button" className="small" disabled={i === questions.length - 1} onClick={() => move(i, 1)} aria-label={t("survey.q.down", { n: i + 1 })} data-testid="survey-q-down">↓</button>
            <button type="button" className="small" onClick={() => onChange(questions.filter((_, j) => j !== i))} data-testid="survey-q-remove">
              {t("survey.q.remove")}
            </button>
          </div>
        </div>
      ))}
      <button
        type="button"
        disabled={questions.length >= QUESTIONS_MAX}
        onClick={() => onChange([...questions, { id: newId(questions), text_ja: "", text_en: "" }])}
        data-testid="survey-q-add"
      >
        {t("survey.q.add")}
      </button>
      {refusal && (
        <p className="error" role="alert" id="survey-questions-error" data-testid="survey-error" data-field="questions">
          {refusal}
        </p>
      )}
    </fieldset>
  );
}

export function surveySections(_ctx: Ctx): Section[] {
  return [
    {
      key: "survey",
      title: "admin.survey",
      permission: "manage_inboxes",
      load: async () => ({ rows: [], next: null }),
      id: () => "",
      columns: [],
      fields: [],
      page: () => <SurveyPage />,
    },
  ];
}

/** Whether any of these inboxes has surveys on: "resolve without survey" is offered then. */
export const surveyed = (inboxes: { id: string; survey_enabled?: boolean }[], ids: string[]) =>
  inboxes.some((i) => i.survey_enabled && ids.includes(i.id));

/** The "resolve without survey" choice (shown only where a survey would go). */
export function WithoutSurvey({ checked, set }: { checked: boolean; set: (v: boolean) => void }) {
  const { t } = useI18n();
  return (
    <label className="check" title={t("survey.without_help")}>
      <input type="checkbox" checked={checked} onChange={(e) => set(e.target.checked)} data-testid="without-survey" />{" "}
      {t("survey.without")}
    </label>
  );
}
