// A campaign's form (issue 20, OUT-6): its name, the inbox it is sent from, the audience (a
// contact list or a segment, with how many it holds now), the subject and body with the
// reserved words and a preview, when it goes (a draft, now, or a chosen time), the sending
// window in each recipient's time zone and the per-domain throttle.
import { FormEvent, useEffect, useState } from "react";
import { api, ApiError } from "./api";
import { go, Session } from "./App";
import { DateTimeInput } from "./DateTimeInput";
import { errorText } from "./errors";
import { Key, useI18n } from "./i18n";
import { Campaign, Segment, useLists } from "./outreachTypes";

export const CAMPAIGN_WORDS = ["customer.name", "customer.address", "customer.company", "inbox.name", "today", "unsubscribe.url"];
const DAYS = [1, 2, 3, 4, 5, 6, 7];

interface Form {
  name: string;
  inbox_id: string;
  language: string;
  kind: "list" | "segment";
  audience: string;
  subject: string;
  body: string;
  when: "draft" | "now" | "at";
  at: string;
  windowOn: boolean;
  start: string;
  end: string;
  days: number[];
  throttle: string;
}

function formOf(c: Campaign | null, session: Session): Form {
  return {
    name: c?.name ?? "",
    inbox_id: c?.inbox_id ?? session.inboxes[0]?.id ?? "",
    language: c?.language || "ja",
    kind: c?.audience.segment_id ? "segment" : "list",
    audience: c?.audience.segment_id ?? c?.audience.list_id ?? "",
    subject: c?.subject ?? "",
    body: c?.body ?? "",
    when: c?.scheduled_at ? "at" : "draft",
    at: c?.scheduled_at ?? "",
    windowOn: !!c?.window,
    start: c?.window?.start ?? "09:00",
    end: c?.window?.end ?? "18:00",
    days: c?.window?.days ?? [1, 2, 3, 4, 5],
    throttle: c?.throttle_per_domain_per_minute == null ? "" : String(c.throttle_per_domain_per_minute),
  };
}

function bodyOf(f: Form) {
  return {
    name: f.name,
    inbox_id: f.inbox_id,
    language: f.language,
    subject: f.subject,
    body: f.body,
    audience: f.kind === "list" ? { list_id: f.audience } : { segment_id: f.audience },
    scheduled_at: f.when === "now" ? new Date().toISOString() : f.when === "at" ? f.at || null : null,
    window: f.windowOn ? { start: f.start, end: f.end, days: f.days } : null,
    throttle_per_domain_per_minute: f.throttle.trim() === "" ? null : Number(f.throttle),
  };
}

const pad = (n: number) => String(n).padStart(2, "0");

/** A time of day as HH:MM, chosen as an hour and a minute (the same whatever the browser's
 * locale, as DateTimeInput's); the window's end may be 24:00. */
function HourMinute({ value, set, label, testId, end }: { value: string; set: (v: string) => void; label: string; testId: string; end?: boolean }) {
  const [h, m] = value.split(":");
  const hours = Array.from({ length: end ? 25 : 24 }, (_, i) => pad(i));
  const minutes = Array.from({ length: 12 }, (_, i) => pad(i * 5));
  if (m && !minutes.includes(m)) minutes.push(m);
  return (
    <span className="row" role="group" aria-label={label}>
      <select value={h} onChange={(e) => set(`${e.target.value}:${e.target.value === "24" ? "00" : m}`)} aria-label={label} data-testid={`${testId}-hour`}>
        {hours.map((x) => (
          <option key={x} value={x}>{x}</option>
        ))}
      </select>
      :
      <select value={m} disabled={h === "24"} onChange={(e) => set(`${h}:${e.target.value}`)} aria-label={label} data-testid={`${testId}-minute`}>
        {minutes.map((x) => (
          <option key={x} value={x}>{x}</option>
        ))}
      </select>
    </span>
  );
}

export function CampaignForm({ campaign, session }: { campaign: Campaign | null; session: Session }) {
  const { t } = useI18n();
  const [f, setF] = useState<Form>(() => formOf(campaign, session));
  const [segments, setSegments] = useState<Segment[]>([]);
  const [count, setCount] = useState<number | null>(null);
  const [error, setError] = useState<{ text: string; field: string } | null>(null);
  const [preview, setPreview] = useState<{ subject: string; body: string; problems: string[] } | null>(null);
  const lists = useLists();
  const set = (x: Partial<Form>) => setF((old) => ({ ...old, ...x }));

  // the inboxes may arrive after the form opened (a reload on #/campaigns/new)
  const firstInbox = session.inboxes[0]?.id ?? "";
  useEffect(() => {
    if (firstInbox) setF((old) => (old.inbox_id ? old : { ...old, inbox_id: firstInbox }));
  }, [firstInbox]);

  useEffect(() => {
    void api
      .get<{ segments: Segment[] }>("/segments")
      .then((r) => setSegments(r.segments))
      .catch(() => {});
  }, []);

  // how many the audience holds now
  useEffect(() => {
    setCount(null);
    if (!f.audience) return;
    if (f.kind === "list") {
      setCount(lists.find((l) => l.id === f.audience)?.member_count ?? null);
      return;
    }
    void api
      .get<{ count: number }>(`/segments/${f.audience}/count`)
      .then((r) => setCount(r.count))
      .catch(() => setCount(null));
  }, [f.kind, f.audience, lists]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    try {
      const body = bodyOf(f);
      const saved = campaign
        ? await api.patch<Campaign>(`/campaigns/${campaign.id}`, body)
        : await api.post<Campaign>("/campaigns", body);
      go(`/campaigns/${saved.id}`);
    } catch (err) {
      setError({ text: errorText(err, t), field: err instanceof ApiError ? err.field ?? "" : "" });
    }
  };

  const showPreview = async () => {
    try {
      setPreview(await api.post("/campaigns/preview", {
          subject: f.subject,
          body: f.body,
          inbox_id: f.inbox_id,
          // an example customer, so that the words show filled in
          contact: { name: t("camp.example_name"), address: "customer@example.com" },
        }));
    } catch (err) {
      setError({ text: errorText(err, t), field: err instanceof ApiError ? err.field ?? "" : "" });
    }
  };

  const insert = (word: string) => set({ body: `${f.body}{{${word}}}` });
  const at = (field: string) => (error?.field === field ? "true" : undefined);
  const options = f.kind === "list" ? lists.map((l) => ({ id: l.id, name: l.name })) : segments;
  return (
    <form className="card form campaign-form" onSubmit={submit} data-testid="campaign-form">
      <h2>{t(campaign ? "camp.edit" : "camp.new")}</h2>
      <div className="field">
        <label htmlFor="c-name">{t("camp.f.name")}</label>
        <input id="c-name" value={f.name} aria-invalid={at("name")} onChange={(e) => set({ name: e.target.value })} data-testid="camp-name" />
      </div>
      <div className="field">
        <label htmlFor="c-inbox">{t("camp.f.inbox")}</label>
        <div className="row gap">
          <select id="c-inbox" value={f.inbox_id} onChange={(e) => set({ inbox_id: e.target.value })} data-testid="camp-inbox">
            {!f.inbox_id && <option value="">—</option>}
            {session.inboxes.map((i) => (
              <option key={i.id} value={i.id}>{i.name}</option>
            ))}
          </select>
          <label htmlFor="c-lang">{t("camp.f.language")}</label>
          <select id="c-lang" value={f.language} onChange={(e) => set({ language: e.target.value })} data-testid="camp-language">
            <option value="ja">日本語</option>
            <option value="en">English</option>
          </select>
        </div>
      </div>
      <div className="field">
        <label htmlFor="c-audience">{t("camp.f.audience")}</label>
        <div className="row gap">
          <select value={f.kind} onChange={(e) => set({ kind: e.target.value as Form["kind"], audience: "" })} aria-label={t("camp.f.audience_kind")} data-testid="camp-audience-kind">
            <option value="list">{t("out.tab.lists")}</option>
            <option value="segment">{t("out.tab.segments")}</option>
          </select>
          <select id="c-audience" value={f.audience} aria-invalid={at("audience")} onChange={(e) => set({ audience: e.target.value })} data-testid="camp-audience">
            <option value="">—</option>
            {options.map((o) => (
              <option key={o.id} value={o.id}>{o.name}</option>
            ))}
          </select>
          <span data-testid="camp-audience-count">{count === null ? "" : t("out.live_count", { n: count })}</span>
        </div>
      </div>
      <div className="field">
        <label htmlFor="c-subject">{t("camp.f.subject")}</label>
        <input id="c-subject" value={f.subject} aria-invalid={at("subject")} onChange={(e) => set({ subject: e.target.value })} data-testid="camp-subject" />
      </div>
      <div className="field">
        <label htmlFor="c-body">{t("camp.f.body")}</label>
        <div>
          <textarea id="c-body" rows={6} value={f.body} aria-invalid={at("body")} onChange={(e) => set({ body: e.target.value })} data-testid="camp-body" />
          <div className="words" data-testid="camp-words">
            <span className="muted">{t("camp.words")}</span>
            {CAMPAIGN_WORDS.map((w) => (
              <button key={w} type="button" className="chip" title={t(`camp.word.${w}` as Key)} onClick={() => insert(w)}>{`{{${w}}}`}</button>
            ))}
            <span className="muted small">{t("camp.words_custom")}</span>
            <button type="button" className="small" onClick={() => void showPreview()} data-testid="camp-preview">{t("camp.preview")}</button>
          </div>
        </div>
      </div>
      {preview && (
        <div className="field" data-testid="camp-preview-shown">
          <span>{t("camp.preview")}</span>
          <div className="card">
            <strong>{preview.subject}</strong>
            <p className="pre">{preview.body}</p>
            {preview.problems.map((p) => (
              <p key={p} className="error">{p}</p>
            ))}
          </div>
        </div>
      )}
      <div className="field">
        <span>{t("camp.f.when")}</span>
        <div className="row gap wrap">
          {(["draft", "now", "at"] as const).map((w) => (
            <label key={w} className="check">
              <input type="radio" name="when" checked={f.when === w} onChange={() => set({ when: w })} data-testid={`camp-when-${w}`} />
              {t(`camp.when.${w}`)}
            </label>
          ))}
          {f.when === "at" && <DateTimeInput value={f.at} onChange={(v) => set({ at: v })} testId="camp-at" label={t("camp.f.when")} />}
        </div>
      </div>
      <div className="field">
        <label className="check">
          <input type="checkbox" checked={f.windowOn} onChange={(e) => set({ windowOn: e.target.checked })} data-testid="camp-window" />
          {t("camp.f.window")}
        </label>
        <div className="row gap wrap">
          {f.windowOn && (
            <>
              <HourMinute value={f.start} set={(v) => set({ start: v })} label={t("camp.window_start")} testId="camp-window-start" />
              –
              <HourMinute value={f.end} set={(v) => set({ end: v })} label={t("camp.window_end")} testId="camp-window-end" end />
              {DAYS.map((d) => (
                <label key={d} className="check">
                  <input
                    type="checkbox"
                    checked={f.days.includes(d)}
                    onChange={(e) => set({ days: e.target.checked ? [...f.days, d].sort() : f.days.filter((x) => x !== d) })}
                  />
                  {t(`camp.day.${d}` as Key)}
                </label>
              ))}
            </>
          )}
          <span className="muted small">{t("camp.window_help")}</span>
        </div>
      </div>
      <div className="field">
        <label htmlFor="c-throttle">{t("camp.f.throttle")}</label>
        <div className="row gap">
          <input id="c-throttle" type="number" min={1} value={f.throttle} placeholder={t("camp.throttle_none")} aria-invalid={at("throttle_per_domain_per_minute")} onChange={(e) => set({ throttle: e.target.value })} data-testid="camp-throttle" />
        </div>
      </div>
      {error && <p className="error" role="alert" data-testid="camp-error" data-field={error.field}>{error.text}</p>}
      <div className="actions">
        <button type="button" onClick={() => go(campaign ? `/campaigns/${campaign.id}` : "/campaigns")}>{t("common.cancel")}</button>
        <button className="primary" type="submit" data-testid="camp-save">{t(f.when === "draft" ? "camp.save_draft" : "camp.save_schedule")}</button>
      </div>
    </form>
  );
}
