// What an error says to the operator, in their language. Every error `code` of
// gateway/openapi.yaml (schema Error) has a message of its own (`error.<code>`; a unit
// test keeps the two lists equal); a code with a field may have a more precise one
// (`error.<code>.<field>`), else the field's label is named. The server's own message is
// English and kept as the detail after the translated text, never shown alone.
import { ApiError } from "./api";
import { DICTS, Key, T } from "./i18n";

const has = (key: string): key is Key => key in DICTS.en;

/** Where an error is shown: the reply editor names its own fields first (its `to` is the
 * recipients, the administration's `to` the last day of a filter); the reports and exports
 * have precise messages of their own for their parameters (`error.report.<code>.<field>`). */
export type Scope = "" | "reply" | "report";

/** A field's label in the UI's words, or "" when the app has none for it. */
export function fieldLabel(field: string, t: T, scope: Scope = ""): string {
  // a field inside a list is named without its index: conditions[2].value → conditions.value
  const plain = field.replace(/\[\d+\]/g, "");
  const keys = [`field.${field}`, `admin.f.${field}`, `reply.${field}`, `field.${plain}`];
  if (scope === "reply") keys.unshift(`reply.${field}`);
  for (const key of keys) {
    if (has(key)) return t(key);
  }
  return "";
}

/** A permission as the UI names it (`perm.<name>`), else its name. */
export function permissionLabel(name: string, t: T): string {
  const key = `perm.${name}`;
  return has(key) ? t(key) : name;
}

/** Codes whose text says all there is: shown without the field's label (a channel reply
 * refused — its `field` is `to` for API clients, but the text names the conversation). */
const WHOLE = new Set(["reply_window_closed", "channel_mixed_recipients"]);

export interface Described {
  text: string; // translated
  detail: string; // the server's message (English), "" when it adds nothing
}

export function describeError(e: unknown, t: T, scope: Scope = ""): Described {
  if (!(e instanceof ApiError)) return { text: t("error.unknown"), detail: String(e) };
  if (e.code === "network") return { text: t("error.network"), detail: "" };
  const field = e.field ?? "";
  const precise = `error.${e.code}.${field}`;
  const ofReports = `error.report.${e.code}.${field}`;
  let text: string;
  if (scope === "report" && field && has(ofReports)) text = t(ofReports);
  else if (field && has(precise)) text = t(precise);
  else if (e.code === "locked") {
    const holder = (e.body?.holder as { name?: string } | undefined)?.name;
    text = holder ? t("error.locked_by", { name: holder }) : t("error.locked");
  } else if (e.code === "permission_denied" && /needs the permission (\w+)/.test(e.message)) {
    const p = /needs the permission (\w+)/.exec(e.message)![1];
    text = t("error.permission_needs", { p: permissionLabel(p, t) });
  } else if (e.code === "resource_exhausted" || e.code === "login_locked") {
    const s = Number(e.body?.retry_after_s ?? 0);
    text = s > 0 ? t("error.retry_after", { text: t(`error.${e.code}` as Key), s }) : t(`error.${e.code}` as Key);
  } else if (has(`error.${e.code}`)) {
    const label = field && !WHOLE.has(e.code) ? fieldLabel(field, t, scope) : "";
    text = label ? t("error.in_field", { text: t(`error.${e.code}` as Key), field: label }) : t(`error.${e.code}` as Key);
  } else text = t("error.unknown");
  const detail = e.message && e.message !== e.code ? e.message : "";
  return { text, detail };
}

/** One line: the translated text, then the server's detail. */
export function errorText(e: unknown, t: T, scope: Scope = ""): string {
  const { text, detail } = describeError(e, t, scope);
  return detail ? t("error.detail", { text, detail }) : text;
}

/** A send's recorded reason that starts with one of the codes above (outbound writes a
 * refused channel delivery as `reply_window_closed: <message>`): the translated text with
 * the server's words as its detail; null for any other reason (an SMTP server's reply
 * stays as the server said it). */
export function reasonText(message: string, t: T): string | null {
  const m = /^(\w+): (.*)$/s.exec(message);
  if (!m || !WHOLE.has(m[1])) return null;
  return t("error.detail", { text: t(`error.${m[1]}` as Key), detail: m[2] });
}
