import { FormEvent, useEffect, useState } from "react";
import { api, PRIORITIES, Priority, Status, STATUSES } from "./api";
import { Ctx, Lookups, Row, Section, str } from "./adminTypes";
import { DayInput, TimeInput, useDayText } from "./DayInput";
import { errorText } from "./errors";
import { Key, useI18n } from "./i18n";
import { FormEnd } from "./routingForm";
import { about, Calendar, formError, Holiday, PublicHoliday, SlaPolicy, Slot, Warning, WEEKDAYS, Weekday } from "./routingTypes";

// Administration of SLA (issue 18, RTE-4): business-hours calendars — a time zone,
// several opening slots per weekday (one may run past midnight), closed days dated or
// yearly, the country's public holidays built in (Japan's by default, listed as the API
// computes them) and closed days imported from an iCal file — and SLA policies: which
// tickets (inboxes, categories, priorities), on which calendar, the first response, next
// response and resolution targets in business minutes, the statuses that pause the
// clock and the warning before a breach. The routing service validates again and names
// the field it refuses (`slots[1].end`), shown at its row.

const ZONES: string[] = (() => {
  try {
    return (Intl as unknown as { supportedValuesOf: (k: string) => string[] }).supportedValuesOf("timeZone");
  } catch {
    return ["Asia/Tokyo", "UTC"];
  }
})();

const blankSlot = (weekday: Weekday = "mon"): Slot => ({ weekday, start: "09:00", end: "18:00", crosses_midnight: false });
const blankCalendar = (): Calendar => ({
  name: "",
  time_zone: "Asia/Tokyo",
  public_holidays: "JP",
  slots: (["mon", "tue", "wed", "thu", "fri"] as Weekday[]).map((d) => blankSlot(d)),
  holidays: [],
});

/** The public holidays the API computes for a country and year, as a list to read. */
function PublicHolidays({ country }: { country: string }) {
  const { t } = useI18n();
  const dayText = useDayText();
  const [year, setYear] = useState(new Date().getUTCFullYear());
  const [days, setDays] = useState<PublicHoliday[] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    if (!country) return;
    let gone = false;
    setDays(null);
    api
      .get<{ holidays: PublicHoliday[] }>("/public-holidays", { country, year })
      .then((r) => !gone && (setDays(r.holidays), setError("")))
      .catch((e) => !gone && setError(errorText(e, t)));
    return () => {
      gone = true;
    };
  }, [country, year, t]);
  if (!country) return null;
  return (
    <div className="policy-box" data-testid="public-holidays">
      <div className="row gap">
        <strong>{t("cal.public_list", { c: country })}</strong>
        <span className="spacer" />
        <button type="button" className="small" onClick={() => setYear(year - 1)} aria-label={t("cal.prev_year")}>◀</button>
        <span data-testid="public-year">{year}</span>
        <button type="button" className="small" onClick={() => setYear(year + 1)} aria-label={t("cal.next_year")}>▶</button>
      </div>
      {error && <p className="error small">{error}</p>}
      {days && (
        <ul className="holiday-list">
          {days.map((d) => (
            <li key={d.date} data-testid="public-holiday">
              <span className="muted">{dayText(d.date)}</span> {d.name}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function SlotRow({ s, set, remove, bad }: { s: Slot; set: (s: Slot) => void; remove: () => void; bad: boolean }) {
  const { t } = useI18n();
  return (
    <div className={bad ? "row gap wrap bad" : "row gap wrap"} data-testid="slot">
      <select value={s.weekday} onChange={(e) => set({ ...s, weekday: e.target.value as Weekday })} aria-label={t("rf.weekday")} data-testid="slot-weekday">
        {WEEKDAYS.map((d) => (
          <option key={d} value={d}>{t(`wd.${d}` as Key)}</option>
        ))}
      </select>
      <TimeInput value={s.start} onChange={(start) => set({ ...s, start })} label={t("rf.start")} testId="slot-start" />
      –
      <TimeInput value={s.end} onChange={(end) => set({ ...s, end })} label={t("rf.end")} testId="slot-end" />
      <label className="check">
        <input type="checkbox" checked={s.crosses_midnight} onChange={(e) => set({ ...s, crosses_midnight: e.target.checked })} data-testid="slot-midnight" />
        {t("cal.next_day")}
      </label>
      <button type="button" className="link small" onClick={remove}>{t("pol.remove")}</button>
    </div>
  );
}

function HolidayRow({ h, i, set, remove, bad }: { h: Holiday; i: number; set: (h: Holiday) => void; remove: () => void; bad: boolean }) {
  const { t } = useI18n();
  return (
    <div className={bad ? "row gap wrap bad" : "row gap wrap"} data-testid="holiday">
      <DayInput value={h.date} onChange={(date) => set({ ...h, date })} testId={`holiday-${i}`} />
      <input value={h.name} placeholder={t("rf.name")} onChange={(e) => set({ ...h, name: e.target.value })} data-testid="holiday-name" />
      <label className="check">
        <input type="checkbox" checked={h.yearly} onChange={(e) => set({ ...h, yearly: e.target.checked })} data-testid="holiday-yearly" />
        {t("cal.yearly")}
      </label>
      <button type="button" className="link small" onClick={remove}>{t("pol.remove")}</button>
    </div>
  );
}

/** An iCal file's whole-day events added to (or replacing) a stored calendar's closed days. */
function IcalImport({ id, done }: { id: string; done: (c: Calendar, n: number) => void }) {
  const { t } = useI18n();
  const [text, setText] = useState("");
  const [replace, setReplace] = useState(false);
  const [error, setError] = useState("");
  const run = async () => {
    try {
      const r = await api.post<{ calendar: Calendar; imported: number }>(`/calendars/${id}/ical`, { ical: text, replace });
      setText("");
      setError("");
      done(r.calendar, r.imported);
    } catch (e) {
      setError(formError(e, t).text);
    }
  };
  return (
    <details className="policy-box" data-testid="ical">
      <summary>{t("cal.ical")}</summary>
      <p className="muted small">{t("cal.ical_help")}</p>
      <input
        type="file"
        accept=".ics,text/calendar"
        onChange={(e) => void e.target.files?.[0]?.text().then(setText)}
        data-testid="ical-file"
      />
      <textarea rows={4} value={text} onChange={(e) => setText(e.target.value)} placeholder="BEGIN:VCALENDAR…" data-testid="ical-text" />
      <div className="row gap">
        <label className="check">
          <input type="checkbox" checked={replace} onChange={(e) => setReplace(e.target.checked)} />
          {t("cal.ical_replace")}
        </label>
        <span className="spacer" />
        <button type="button" disabled={!text.trim()} onClick={() => void run()} data-testid="ical-import">{t("cal.ical_import")}</button>
      </div>
      {error && <p className="error small" role="alert" data-testid="ical-error">{error}</p>}
    </details>
  );
}

export function CalendarForm({ row, done }: { row: Row | "new"; done: (saved: boolean) => void }) {
  const { t } = useI18n();
  const [c, setC] = useState<Calendar>(() => (row === "new" ? blankCalendar() : (structuredClone(row) as unknown as Calendar)));
  const [error, setError] = useState<{ text: string; field: string } | null>(null);
  const [note, setNote] = useState("");
  const stored = row !== "new";

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const body = { name: c.name, time_zone: c.time_zone, public_holidays: c.public_holidays, slots: c.slots, holidays: c.holidays };
    try {
      if (stored) await api.put(`/calendars/${(row as Row).id}`, body);
      else await api.post("/calendars", body);
      done(true);
    } catch (err) {
      setError(formError(err, t));
    }
  };
  const setSlot = (i: number, s: Slot) => setC({ ...c, slots: c.slots.map((x, k) => (k === i ? s : x)) });
  const setHoliday = (i: number, h: Holiday) => setC({ ...c, holidays: c.holidays.map((x, k) => (k === i ? h : x)) });

  return (
    <form className="card form" onSubmit={submit} data-testid="calendar-form">
      {note && <p className="notice" role="status" data-testid="form-note">{note}</p>}
      <div className="field">
        <label htmlFor="cal-name">{t("rf.name")}</label>
        <input id="cal-name" value={c.name} onChange={(e) => setC({ ...c, name: e.target.value })} data-testid="calendar-name" />
      </div>
      <div className="field">
        <label htmlFor="cal-zone">{t("rf.time_zone")}</label>
        <div>
          <input id="cal-zone" list="cal-zones" value={c.time_zone} onChange={(e) => setC({ ...c, time_zone: e.target.value })} data-testid="calendar-zone" />
          <datalist id="cal-zones">
            {ZONES.map((z) => (
              <option key={z} value={z} />
            ))}
          </datalist>
        </div>
      </div>
      <div className="field">
        <span>{t("rf.slots")}</span>
        <div>
          {c.slots.map((s, i) => (
            <SlotRow
              key={i}
              s={s}
              bad={about(error, `slots[${i}]`)}
              set={(x) => setSlot(i, x)}
              remove={() => setC({ ...c, slots: c.slots.filter((_, k) => k !== i) })}
            />
          ))}
          <button type="button" className="link small" onClick={() => setC({ ...c, slots: [...c.slots, blankSlot()] })} data-testid="add-slot">
            + {t("cal.add_slot")}
          </button>
        </div>
      </div>
      <div className="field">
        <label htmlFor="cal-public">{t("rf.public_holidays")}</label>
        <div>
          <select id="cal-public" value={c.public_holidays} onChange={(e) => setC({ ...c, public_holidays: e.target.value })} data-testid="calendar-public">
            <option value="JP">{t("cal.public_jp")}</option>
            <option value="">{t("cal.public_none")}</option>
            {c.public_holidays && c.public_holidays !== "JP" && <option value={c.public_holidays}>{c.public_holidays}</option>}
          </select>
          <PublicHolidays country={c.public_holidays} />
        </div>
      </div>
      <div className="field">
        <span>{t("rf.holidays")}</span>
        <div>
          {c.holidays.map((h, i) => (
            <HolidayRow
              key={i}
              i={i}
              h={h}
              bad={about(error, `holidays[${i}]`)}
              set={(x) => setHoliday(i, x)}
              remove={() => setC({ ...c, holidays: c.holidays.filter((_, k) => k !== i) })}
            />
          ))}
          <button
            type="button"
            className="link small"
            onClick={() => setC({ ...c, holidays: [...c.holidays, { date: new Date().toISOString().slice(0, 10), name: "", yearly: false }] })}
            data-testid="add-holiday"
          >
            + {t("cal.add_holiday")}
          </button>
          {stored && (
            <IcalImport
              id={str((row as Row).id)}
              done={(cal, n) => {
                setC({ ...c, holidays: cal.holidays, version: cal.version });
                setNote(t("cal.ical_done", { n }));
              }}
            />
          )}
        </div>
      </div>
      <FormEnd error={error} done={done} />
    </form>
  );
}

const blankPolicy = (): SlaPolicy => ({
  name: "",
  enabled: true,
  inbox_ids: [],
  categories: [],
  priorities: [],
  calendar_id: null,
  first_response_minutes: 60,
  next_response_minutes: null,
  resolution_minutes: null,
  pause_statuses: ["pending"],
  warning: { before_minutes: 15 },
});

function Picks<V extends string>({ all, chosen, label, set, testId }: { all: { value: V; label: string }[]; chosen: V[]; label: string; set: (v: V[]) => void; testId: string }) {
  return (
    <div className="checks" role="group" aria-label={label} data-testid={testId}>
      {all.map((o) => (
        <label key={o.value} className="check">
          <input
            type="checkbox"
            checked={chosen.includes(o.value)}
            onChange={(e) => set(e.target.checked ? [...chosen, o.value] : chosen.filter((x) => x !== o.value))}
          />
          {o.label}
        </label>
      ))}
    </div>
  );
}

const TARGETS = ["first_response_minutes", "next_response_minutes", "resolution_minutes"] as const;

export function SlaPolicyForm({ row, lookups, calendars, done }: { row: Row | "new"; lookups: Lookups; calendars: Calendar[]; done: (saved: boolean) => void }) {
  const { t } = useI18n();
  const [p, setP] = useState<SlaPolicy>(() => (row === "new" ? blankPolicy() : (structuredClone(row) as unknown as SlaPolicy)));
  const [categories, setCategories] = useState(p.categories.join(", "));
  const [error, setError] = useState<{ text: string; field: string } | null>(null);
  const warnKind = p.warning === null ? "none" : "at_percent" in p.warning ? "percent" : "before";
  const warnValue = p.warning === null ? 0 : "at_percent" in p.warning ? p.warning.at_percent : p.warning.before_minutes;
  const setWarning = (kind: string, v: number) =>
    setP({ ...p, warning: (kind === "none" ? null : kind === "percent" ? { at_percent: v } : { before_minutes: v }) as Warning });

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const body = {
      name: p.name,
      enabled: p.enabled,
      inbox_ids: p.inbox_ids,
      categories: categories.split(",").map((x) => x.trim()).filter(Boolean),
      priorities: p.priorities,
      calendar_id: p.calendar_id || null,
      first_response_minutes: p.first_response_minutes,
      next_response_minutes: p.next_response_minutes,
      resolution_minutes: p.resolution_minutes,
      pause_statuses: p.pause_statuses,
      warning: p.warning,
      ...(p.position ? { position: p.position } : {}),
    };
    try {
      if (row !== "new") await api.put(`/sla-policies/${(row as Row).id}`, body);
      else await api.post("/sla-policies", body);
      done(true);
    } catch (err) {
      setError(formError(err, t));
    }
  };

  return (
    <form className="card form" onSubmit={submit} data-testid="sla-form">
      <div className="field">
        <label htmlFor="sla-name">{t("rf.name")}</label>
        <input id="sla-name" value={p.name} onChange={(e) => setP({ ...p, name: e.target.value })} data-testid="sla-name" />
      </div>
      <div className="field">
        <label htmlFor="sla-enabled">{t("rf.enabled")}</label>
        <input id="sla-enabled" type="checkbox" checked={p.enabled} onChange={(e) => setP({ ...p, enabled: e.target.checked })} />
      </div>
      <div className="field">
        <span>{t("rf.inbox_ids")}</span>
        <Picks all={lookups.inboxes} chosen={p.inbox_ids} label={t("rf.inbox_ids")} set={(v) => setP({ ...p, inbox_ids: v })} testId="sla-inboxes" />
      </div>
      <div className="field">
        <label htmlFor="sla-cats">{t("rf.categories")}</label>
        <input id="sla-cats" value={categories} placeholder={t("sla.any_comma")} onChange={(e) => setCategories(e.target.value)} />
      </div>
      <div className="field">
        <span>{t("rf.priorities")}</span>
        <Picks
          all={PRIORITIES.map((v) => ({ value: v, label: t(`priority.${v}` as Key) }))}
          chosen={p.priorities}
          label={t("rf.priorities")}
          set={(v: Priority[]) => setP({ ...p, priorities: v })}
          testId="sla-priorities"
        />
      </div>
      <div className="field">
        <label htmlFor="sla-cal">{t("rf.calendar_id")}</label>
        <select id="sla-cal" value={p.calendar_id ?? ""} onChange={(e) => setP({ ...p, calendar_id: e.target.value || null })} data-testid="sla-calendar">
          <option value="">{t("sla.around_the_clock")}</option>
          {calendars.map((c) => (
            <option key={c.id} value={c.id}>{c.name}</option>
          ))}
        </select>
      </div>
      {TARGETS.map((k) => (
        <div className={about(error, k) ? "field bad" : "field"} key={k}>
          <label htmlFor={`sla-${k}`}>{t(`rf.${k}` as Key)}</label>
          <span className="row gap">
            <input
              id={`sla-${k}`}
              type="number"
              min={1}
              value={p[k] ?? ""}
              placeholder={t("sla.not_tracked")}
              onChange={(e) => setP({ ...p, [k]: e.target.value === "" ? null : Number(e.target.value) })}
              data-testid={`sla-${k}`}
            />
            <span className="muted small">{t("sla.business_minutes")}</span>
          </span>
        </div>
      ))}
      <div className="field">
        <span>{t("rf.pause_statuses")}</span>
        <Picks
          all={STATUSES.filter((s) => s !== "open").map((v) => ({ value: v, label: t(`status.${v}` as Key) }))}
          chosen={p.pause_statuses}
          label={t("rf.pause_statuses")}
          set={(v: Status[]) => setP({ ...p, pause_statuses: v })}
          testId="sla-pause"
        />
      </div>
      <div className={about(error, "warning") ? "field bad" : "field"}>
        <label htmlFor="sla-warn">{t("rf.warning")}</label>
        <span className="row gap">
          <select id="sla-warn" value={warnKind} onChange={(e) => setWarning(e.target.value, e.target.value === "percent" ? 80 : 15)} data-testid="sla-warning-kind">
            <option value="before">{t("sla.warn_before")}</option>
            <option value="percent">{t("sla.warn_percent")}</option>
            <option value="none">{t("sla.warn_none")}</option>
          </select>
          {warnKind !== "none" && (
            <input type="number" min={1} value={warnValue} onChange={(e) => setWarning(warnKind, Number(e.target.value))} data-testid="sla-warning-value" />
          )}
        </span>
      </div>
      <FormEnd error={error} done={done} />
    </form>
  );
}

/** The SLA policy editor with the tenant's calendars to choose from. */
function SlaPolicyEditor(props: { row: Row | "new"; lookups: Lookups; done: (saved: boolean) => void }) {
  const [calendars, setCalendars] = useState<Calendar[]>([]);
  useEffect(() => {
    void api.get<{ calendars: Calendar[] }>("/calendars").then((r) => setCalendars(r.calendars)).catch(() => {});
  }, []);
  return <SlaPolicyForm {...props} calendars={calendars} />;
}

const minutes = (v: unknown, t: Ctx["t"]) => (v === null || v === undefined ? "—" : t("sla.min", { n: Number(v) }));

export function slaSections({ t }: Ctx): Section[] {
  return [
    {
      key: "calendars",
      title: "rt.calendars",
      permission: "manage_rules",
      help: "rt.calendars_help",
      load: async () => ({ rows: (await api.get<{ calendars: Row[] }>("/calendars")).calendars, next: null }),
      id: (r) => str(r.id),
      columns: [
        { label: "rf.name", value: (r) => str(r.name) },
        { label: "rf.time_zone", value: (r) => str(r.time_zone) },
        {
          label: "rf.slots",
          value: (r) => ((r.slots ?? []) as Slot[]).map((s) => `${t(`wd.${s.weekday}` as Key)} ${s.start}–${s.end}`).join(", "),
        },
        { label: "rf.public_holidays", value: (r) => (r.public_holidays ? str(r.public_holidays) : "—") },
        { label: "rf.holidays", value: (r) => String(((r.holidays ?? []) as Holiday[]).length) },
      ],
      fields: [],
      editor: (row, _l, done) => <CalendarForm row={row} done={done} />,
      remove: (r) => api.del(`/calendars/${r.id}`),
    },
    {
      key: "sla",
      title: "rt.sla_policies",
      permission: "manage_rules",
      help: "rt.sla_help",
      load: async () => ({ rows: (await api.get<{ policies: Row[] }>("/sla-policies")).policies, next: null }),
      id: (r) => str(r.id),
      columns: [
        { label: "rf.position", value: (r) => str(r.position) },
        { label: "rf.name", value: (r) => `${str(r.name)}${r.enabled === false ? ` (${t("rt.disabled")})` : ""}` },
        { label: "rf.first_response_minutes", value: (r) => minutes(r.first_response_minutes, t) },
        { label: "rf.next_response_minutes", value: (r) => minutes(r.next_response_minutes, t) },
        { label: "rf.resolution_minutes", value: (r) => minutes(r.resolution_minutes, t) },
      ],
      fields: [],
      editor: (row, lookups, done) => <SlaPolicyEditor row={row} lookups={lookups} done={done} />,
      remove: (r) => api.del(`/sla-policies/${r.id}`),
    },
  ];
}
