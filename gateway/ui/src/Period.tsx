// The period and time-zone pickers of the Reports section and the Exports screen (issue 19):
// a period is whole days, from its first to its last day (both included), in a time zone;
// days are chosen as the app's one date order (DayInput), never the browser's own picker.
// The zone is any IANA name: offered from the browser's list, typed freely, checked by the
// server (400 naming `tz`).
import { useEffect, useMemo, useState } from "react";
import { Session } from "./App";
import { DayInput } from "./DayInput";
import { instantOf, wallAt, zoneText } from "./format";
import { useI18n } from "./i18n";

export interface Period {
  from: string; // YYYY-MM-DD, the first day
  to: string; // YYYY-MM-DD, the last day (included)
}

const pad = (n: number) => String(n).padStart(2, "0");

/** The day `n` days after `day` (YYYY-MM-DD). */
export function addDays(day: string, n: number): string {
  const [y, m, d] = day.split("-").map(Number);
  const x = new Date(Date.UTC(y, m - 1, d + n));
  return `${x.getUTCFullYear()}-${pad(x.getUTCMonth() + 1)}-${pad(x.getUTCDate())}`;
}

/** Today in the zone (YYYY-MM-DD). */
export function today(tz: string): string {
  let w;
  try {
    w = wallAt(Date.now(), tz);
  } catch {
    w = wallAt(Date.now(), "UTC");
  }
  return `${w.year}-${pad(w.month)}-${pad(w.day)}`;
}

/** The instant a day starts in the zone, as ISO 8601 (UTC). */
export function dayStart(day: string, tz: string): string {
  const [year, month, d] = day.split("-").map(Number);
  try {
    return new Date(instantOf({ year, month, day: d, hour: 0, minute: 0 }, tz)).toISOString();
  } catch {
    return `${day}T00:00:00Z`;
  }
}

export type Preset = "today" | "7d" | "30d" | "month" | "12m";
export const PRESETS: Preset[] = ["today", "7d", "30d", "month", "12m"];

export function presetPeriod(p: Preset, tz: string): Period {
  const t = today(tz);
  switch (p) {
    case "today":
      return { from: t, to: t };
    case "7d":
      return { from: addDays(t, -6), to: t };
    case "30d":
      return { from: addDays(t, -29), to: t };
    case "month":
      return { from: `${t.slice(0, 8)}01`, to: t };
    case "12m":
      return { from: `${Number(t.slice(0, 4)) - 1}-${t.slice(5, 7)}-01`, to: t };
  }
}

/** A preset ("today", "last 7 days"…) follows the zone and the date; chosen days stay. */
export interface PeriodChoice extends Period {
  preset: Preset | "";
}

/** The days a choice stands for in the zone. */
export function periodOf(c: PeriodChoice, tz: string): Period {
  return c.preset ? presetPeriod(c.preset, tz) : { from: c.from, to: c.to };
}

export function PeriodPicker({ value, onChange, tz }: { value: PeriodChoice; onChange: (p: PeriodChoice) => void; tz: string }) {
  const { t } = useI18n();
  const days = periodOf(value, tz);
  return (
    <span className="period" role="group" aria-label={t("rep.period")}>
      <select
        aria-label={t("rep.preset")}
        value={value.preset}
        onChange={(e) => {
          const preset = e.target.value as Preset | "";
          onChange({ ...(preset ? presetPeriod(preset, tz) : days), preset });
        }}
        data-testid="period-preset"
      >
        <option value="">{t("rep.preset.custom")}</option>
        {PRESETS.map((p) => (
          <option key={p} value={p}>{t(`rep.preset.${p}`)}</option>
        ))}
      </select>
      <DayInput value={days.from} onChange={(from) => onChange({ from, to: days.to < from ? from : days.to, preset: "" })} testId="period-from" />
      <span aria-hidden>–</span>
      <DayInput value={days.to} onChange={(to) => onChange({ from: days.from, to, preset: "" })} testId="period-to" />
    </span>
  );
}

function zones(): string[] {
  try {
    const all = Intl.supportedValuesOf("timeZone");
    return all.includes("UTC") ? all : ["UTC", ...all];
  } catch {
    return ["UTC"];
  }
}

/** Any IANA zone; "" is the default the caller names (`fallback`, shown beside it). */
export function ZonePicker({ value, onChange, fallback }: { value: string; onChange: (tz: string) => void; fallback: string }) {
  const { t } = useI18n();
  const list = useMemo(zones, []);
  const [draft, setDraft] = useState(value);
  useEffect(() => setDraft(value), [value]);
  // a name from the list applies at once; one typed by hand when the field is left or on Enter
  const commit = (v: string) => {
    const tz = v.trim();
    if (tz !== value) onChange(tz);
  };
  return (
    <label title={zoneText(value || fallback)}>
      {t("rep.tz")}
      <input
        list="sb-zones"
        value={draft}
        placeholder={t("rep.tz_default", { tz: fallback })}
        onChange={(e) => {
          setDraft(e.target.value);
          if (list.includes(e.target.value) || e.target.value === "") commit(e.target.value);
        }}
        onBlur={() => commit(draft)}
        onKeyDown={(e) => e.key === "Enter" && commit(draft)}
        className="zone"
        data-testid="tz"
      />
      <datalist id="sb-zones">
        {list.map((z) => (
          <option key={z} value={z} />
        ))}
      </datalist>
    </label>
  );
}

/** One inbox of the caller's, or all of them (""). */
export function InboxPicker({ session, value, onChange }: { session: Session; value: string; onChange: (id: string) => void }) {
  const { t } = useI18n();
  return (
    <label>
      {t("col.inbox")}
      <select value={value} onChange={(e) => onChange(e.target.value)} data-testid="report-inbox">
        <option value="">{t("rep.all_inboxes")}</option>
        {session.inboxes.map((i) => (
          <option key={i.id} value={i.id}>{i.name}</option>
        ))}
      </select>
    </label>
  );
}

