import { useEffect, useState } from "react";
import { dayText, instantOf, Wall, wallAt, zoneText } from "./format";
import { useI18n } from "./i18n";

// Choosing a date and time in the operator's time zone, shown in the app's one format
// (format.ts) whatever the browser's locale: a day (with its weekday), an hour and a
// minute, and the time zone beside them. The value is an ISO 8601 instant in UTC ("" for
// none), so what is sent never depends on the browser's own zone. `dayOnly` chooses a day
// alone: its start, or (for "until") the start of the next day.

const pad = (n: number) => String(n).padStart(2, "0");
const dayKey = (w: Pick<Wall, "year" | "month" | "day">) => `${w.year}-${pad(w.month)}-${pad(w.day)}`;

/** Midnight of the day `n` days after the given one. */
function dayAfter(d: Pick<Wall, "year" | "month" | "day">, n: number): Wall {
  const x = new Date(Date.UTC(d.year, d.month - 1, d.day + n));
  return { year: x.getUTCFullYear(), month: x.getUTCMonth() + 1, day: x.getUTCDate(), hour: 0, minute: 0 };
}

interface Parts {
  day: string; // YYYY-MM-DD
  hour: string; // HH
  minute: string; // MM
}

function partsOf(iso: string, tz: string, end: boolean): Parts {
  const ms = Date.parse(iso);
  if (!iso || Number.isNaN(ms)) return { day: "", hour: "09", minute: "00" };
  const w = wallAt(end ? ms - 60_000 : ms, tz);
  return { day: dayKey(w), hour: pad(w.hour), minute: pad(w.minute) };
}

export function DateTimeInput({
  value,
  onChange,
  fromDays = 0,
  toDays = 90,
  dayOnly,
  testId,
  label,
}: {
  value: string;
  onChange: (iso: string) => void;
  fromDays?: number; // the first day offered, relative to today (negative: the past)
  toDays?: number;
  dayOnly?: "start" | "end";
  testId: string;
  label: string;
}) {
  const { t, lang, tz } = useI18n();
  const end = dayOnly === "end";
  const [parts, setParts] = useState<Parts>(() => partsOf(value, tz, end));
  useEffect(() => {
    if (value) setParts(partsOf(value, tz, end));
  }, [value, tz, end]);

  const today = wallAt(Date.now(), tz);
  const days: { key: string; text: string }[] = [];
  for (let i = fromDays; i <= toDays; i++) {
    const w = dayAfter(today, i);
    days.push({ key: dayKey(w), text: dayText(w, lang) });
  }
  if (parts.day && !days.some((d) => d.key === parts.day)) {
    const [y, m, d] = parts.day.split("-").map(Number);
    days.push({ key: parts.day, text: dayText({ year: y, month: m, day: d, hour: 0, minute: 0 }, lang) });
    days.sort((a, b) => (a.key < b.key ? -1 : 1));
  }
  const minutes = Array.from({ length: 12 }, (_, i) => pad(i * 5));
  if (!minutes.includes(parts.minute)) minutes.push(parts.minute);
  minutes.sort();

  const set = (patch: Partial<Parts>) => {
    const next = { ...parts, ...patch };
    setParts(next);
    if (!next.day) {
      onChange("");
      return;
    }
    const [year, month, day] = next.day.split("-").map(Number);
    const ms = dayOnly
      ? instantOf(dayAfter({ year, month, day }, end ? 1 : 0), tz)
      : instantOf({ year, month, day, hour: Number(next.hour), minute: Number(next.minute) }, tz);
    onChange(new Date(ms).toISOString());
  };

  return (
    <span className="datetime" role="group" aria-label={label} data-testid={testId}>
      <select
        value={parts.day}
        onChange={(e) => set({ day: e.target.value })}
        aria-label={t("time.day")}
        data-testid={`${testId}-day`}
      >
        <option value="">—</option>
        {days.map((d) => (
          <option key={d.key} value={d.key}>{d.text}</option>
        ))}
      </select>
      {!dayOnly && (
        <>
          <select
            value={parts.hour}
            onChange={(e) => set({ hour: e.target.value })}
            aria-label={t("time.hour")}
            data-testid={`${testId}-hour`}
          >
            {Array.from({ length: 24 }, (_, h) => pad(h)).map((h) => (
              <option key={h} value={h}>{h}</option>
            ))}
          </select>
          :
          <select
            value={parts.minute}
            onChange={(e) => set({ minute: e.target.value })}
            aria-label={t("time.minute")}
            data-testid={`${testId}-minute`}
          >
            {minutes.map((m) => (
              <option key={m} value={m}>{m}</option>
            ))}
          </select>
          <span className="muted small" data-testid={`${testId}-zone`}>{zoneText(tz)}</span>
        </>
      )}
    </span>
  );
}
