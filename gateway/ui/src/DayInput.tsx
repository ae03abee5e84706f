import { dateText } from "./format";
import { useI18n } from "./i18n";

// A calendar day (`YYYY-MM-DD`, no time, no zone: a holiday) chosen as year, month and
// day selects in the app's one date order — Japanese 年/月/日, English day month year —
// never the browser's own date picker, whose format follows its locale.

const pad = (n: number) => String(n).padStart(2, "0");
const MONTHS_EN = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

export function dayOf(iso: string): { year: number; month: number; day: number } {
  const [y, m, d] = iso.split("-").map(Number);
  return { year: y || new Date().getUTCFullYear(), month: m || 1, day: d || 1 };
}

/** A stored day as the operator reads it: `2027/01/11`, `11 Jan 2027`. */
export function useDayText(): (iso: string) => string {
  const { lang } = useI18n();
  return (iso) => {
    const d = dayOf(iso);
    return dateText({ ...d, hour: 0, minute: 0 }, lang);
  };
}

export function DayInput({ value, onChange, testId }: { value: string; onChange: (v: string) => void; testId?: string }) {
  const { lang, t } = useI18n();
  const d = dayOf(value);
  const thisYear = new Date().getUTCFullYear();
  const years = Array.from({ length: 8 }, (_, i) => thisYear - 2 + i);
  if (!years.includes(d.year)) years.unshift(d.year);
  const days = new Date(Date.UTC(d.year, d.month, 0)).getUTCDate();
  const set = (p: Partial<typeof d>) => {
    const n = { ...d, ...p };
    const last = new Date(Date.UTC(n.year, n.month, 0)).getUTCDate();
    onChange(`${n.year}-${pad(n.month)}-${pad(Math.min(n.day, last))}`);
  };
  const year = (
    <select key="y" aria-label={t("rt.year")} value={d.year} onChange={(e) => set({ year: Number(e.target.value) })} data-testid={testId && `${testId}-year`}>
      {years.map((y) => (
        <option key={y} value={y}>{lang === "ja" ? `${y}年` : y}</option>
      ))}
    </select>
  );
  const month = (
    <select key="m" aria-label={t("rt.month")} value={d.month} onChange={(e) => set({ month: Number(e.target.value) })} data-testid={testId && `${testId}-month`}>
      {MONTHS_EN.map((m, i) => (
        <option key={m} value={i + 1}>{lang === "ja" ? `${i + 1}月` : m}</option>
      ))}
    </select>
  );
  const day = (
    <select key="d" aria-label={t("rt.day")} value={d.day} onChange={(e) => set({ day: Number(e.target.value) })} data-testid={testId && `${testId}-day`}>
      {Array.from({ length: days }, (_, i) => i + 1).map((n) => (
        <option key={n} value={n}>{lang === "ja" ? `${n}日` : n}</option>
      ))}
    </select>
  );
  return <span className="datetime">{lang === "ja" ? [year, month, day] : [day, month, year]}</span>;
}

/** A wall-clock time `HH:MM` (00:00–24:00) as hour and minute selects: the 24-hour
 * clock in both languages, whatever the browser's locale would make of a time input. */
export function TimeInput({ value, onChange, label, testId }: { value: string; onChange: (v: string) => void; label: string; testId?: string }) {
  const { t } = useI18n();
  const [h, m] = value.split(":");
  const hours = Array.from({ length: 25 }, (_, i) => pad(i));
  const minutes = Array.from({ length: 60 }, (_, i) => pad(i));
  return (
    <span className="datetime" role="group" aria-label={label} data-testid={testId}>
      <select aria-label={t("rt.hour")} value={h} onChange={(e) => onChange(`${e.target.value}:${e.target.value === "24" ? "00" : m}`)} data-testid={testId && `${testId}-hour`}>
        {hours.map((x) => (
          <option key={x} value={x}>{x}</option>
        ))}
      </select>
      :
      <select aria-label={t("rt.minute")} value={m} disabled={h === "24"} onChange={(e) => onChange(`${h}:${e.target.value}`)} data-testid={testId && `${testId}-minute`}>
        {minutes.map((x) => (
          <option key={x} value={x}>{x}</option>
        ))}
      </select>
    </span>
  );
}
