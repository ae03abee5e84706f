// The one way the app shows and reads dates and times: in the operator's time zone (their
// own, else the tenant's, as GET /me answers), in one format per language —
// Japanese `2026/12/07 10:00`, English `7 Dec 2026, 10:00` (never 12/07 or 07/12, which
// read differently in different countries). The parts come from Intl.DateTimeFormat in the
// time zone; the words are ours, so the text does not change with the browser's ICU
// (en-GB writes "Sept" in some versions).
import { useMemo } from "react";
import { useI18n } from "./i18n";

type Lang = "en" | "ja";

const MONTHS_EN = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const WEEKDAYS_EN = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const WEEKDAYS_JA = ["日", "月", "火", "水", "木", "金", "土"];

/** A wall-clock time: what a clock in the time zone shows. month 1–12. */
export interface Wall {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
}

const partsFormats = new Map<string, Intl.DateTimeFormat>();

function partsFormat(tz: string): Intl.DateTimeFormat {
  let f = partsFormats.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      hourCycle: "h23",
    });
    partsFormats.set(tz, f);
  }
  return f;
}

/** The wall-clock time in `tz` at the instant `ms`. */
export function wallAt(ms: number, tz: string): Wall {
  const out: Record<string, number> = {};
  for (const p of partsFormat(tz).formatToParts(new Date(ms))) {
    if (p.type !== "literal") out[p.type] = Number(p.value);
  }
  return { year: out.year, month: out.month, day: out.day, hour: out.hour % 24, minute: out.minute };
}

const utcOf = (w: Wall) => Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute);

/** The instant (ms) when a clock in `tz` shows `w`. A time skipped by a daylight-saving
 * change is read with the offset before it; a repeated one is its first occurrence. */
export function instantOf(w: Wall, tz: string): number {
  const guess = utcOf(w);
  const first = guess - (utcOf(wallAt(guess, tz)) - guess);
  const second = guess - (utcOf(wallAt(first, tz)) - first);
  return Math.min(first, second);
}

const pad = (n: number) => String(n).padStart(2, "0");

function wallOf(iso: string, tz: string): Wall | null {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return null;
  try {
    return wallAt(ms, tz);
  } catch {
    return wallAt(ms, "UTC"); // an unknown zone name: UTC rather than nothing
  }
}

export function dateText(w: Wall, lang: Lang): string {
  return lang === "ja" ? `${w.year}/${pad(w.month)}/${pad(w.day)}` : `${w.day} ${MONTHS_EN[w.month - 1]} ${w.year}`;
}

export function dateTimeText(w: Wall, lang: Lang): string {
  const time = `${pad(w.hour)}:${pad(w.minute)}`;
  return lang === "ja" ? `${dateText(w, lang)} ${time}` : `${dateText(w, lang)}, ${time}`;
}

/** A day with its weekday, for choosing one: `2026/12/07（月）`, `Mon 7 Dec 2026`. */
export function dayText(w: Wall, lang: Lang): string {
  const weekday = new Date(Date.UTC(w.year, w.month - 1, w.day)).getUTCDay();
  return lang === "ja" ? `${dateText(w, lang)}（${WEEKDAYS_JA[weekday]}）` : `${WEEKDAYS_EN[weekday]} ${dateText(w, lang)}`;
}

/** An API timestamp as the operator reads it ("" for none). */
export function formatDateTime(iso: string | null | undefined, lang: Lang, tz: string): string {
  const w = iso ? wallOf(iso, tz) : null;
  return w ? dateTimeText(w, lang) : "";
}

export function formatDate(iso: string | null | undefined, lang: Lang, tz: string): string {
  const w = iso ? wallOf(iso, tz) : null;
  return w ? dateText(w, lang) : "";
}

/** The time zone as shown beside a time being chosen: `Asia/Tokyo (UTC+09:00)`. */
export function zoneText(tz: string, at: number = Date.now()): string {
  try {
    const offset = (utcOf(wallAt(at, tz)) - Math.floor(at / 60000) * 60000) / 60000;
    const sign = offset < 0 ? "−" : "+";
    const abs = Math.abs(offset);
    return `${tz} (UTC${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)})`;
  } catch {
    return tz;
  }
}

/** A language code in the operator's language ("ja" → 日本語 / Japanese). */
export function languageName(code: string, lang: string): string {
  if (!code) return "—";
  try {
    return new Intl.DisplayNames([lang], { type: "language" }).of(code) ?? code;
  } catch {
    return code;
  }
}

/** The formatters bound to the operator's language and time zone. */
export function useFormat() {
  const { lang, tz } = useI18n();
  return useMemo(
    () => ({
      lang,
      tz,
      dateTime: (iso: string | null | undefined) => formatDateTime(iso, lang, tz),
      date: (iso: string | null | undefined) => formatDate(iso, lang, tz),
      zone: () => zoneText(tz),
    }),
    [lang, tz],
  );
}
