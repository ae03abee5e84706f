import { useCallback, useEffect, useState } from "react";
import { api, TimelineEntry } from "./api";
import { languageName, useFormat } from "./format";
import { reasonText } from "./errors";
import { DICTS, Key, useI18n } from "./i18n";

// A ticket's activity history (issue 16, item 6): its audit trail (GET
// /tickets/{id}/audit, TKT-13) in the timeline among the mails and comments, each entry
// one line — when, who, what, and each field's old and new value. Every entry the API
// returns is shown: known actions and fields in the UI's words, others by their name.
// The operator can fold the history away; the choice is remembered in this browser.

export interface AuditEntry {
  id: string;
  at: string;
  actor: { kind: "operator" | "customer" | "system"; id: string; name: string } | null;
  action: string;
  changes: { field: string; old: string; new: string }[];
  comment: string | null;
}

const LIMIT = 200;
const SHOWN_KEY = "sb.activity";

export function useActivity(ticketId: string) {
  const [entries, setEntries] = useState<AuditEntry[]>([]);
  const [more, setMore] = useState(false);
  const reload = useCallback(async () => {
    try {
      const page = await api.get<{ items: AuditEntry[]; next: string | null }>(`/tickets/${ticketId}/audit`, {
        limit: LIMIT,
      });
      setEntries(page.items);
      setMore(page.next !== null);
    } catch {
      /* the history is a courtesy beside the ticket; the ticket shows its own errors */
    }
  }, [ticketId]);
  const [shown, setShown] = useState(() => localStorage.getItem(SHOWN_KEY) !== "hidden");
  const toggle = () => {
    setShown((s) => {
      localStorage.setItem(SHOWN_KEY, s ? "hidden" : "shown");
      return !s;
    });
  };
  useEffect(() => {
    void reload();
  }, [reload]);
  return { entries, more, reload, shown, toggle };
}

export type Item = TimelineEntry | { type: "activity"; at: string; entry: AuditEntry };

/** The timeline with the activity among it, oldest first (entries of the same moment
 * after the item they are about). */
export function merged(timeline: TimelineEntry[], entries: AuditEntry[], shown: boolean): Item[] {
  if (!shown) return timeline;
  const acts: Item[] = entries.map((entry) => ({ type: "activity", at: entry.at, entry }));
  const out: Item[] = [...timeline, ...acts];
  const rank = (i: Item) => (i.type === "activity" ? 1 : 0);
  return out
    .map((item, n) => ({ item, n }))
    .sort((a, b) => {
      const ta = Date.parse(a.item.at);
      const tb = Date.parse(b.item.at);
      return ta - tb || rank(a.item) - rank(b.item) || a.n - b.n;
    })
    .map((x) => x.item);
}

const has = (key: string): key is Key => key in DICTS.en;

// the notes the tickets service writes itself (in English), in the UI's words; an
// operator's own note (a handover note) is shown as written
const NOTES: Record<string, Key> = {
  "the customer replied": "audit.note.customer_replied",
  "assigned to the operator who started the reply": "audit.note.assigned_on_reply",
  // routing's assignment (issue 18)
  "routing rules": "audit.note.routing_rules",
  "assigned by least loaded": "audit.note.by_least_loaded",
  "assigned by round robin": "audit.note.by_round_robin",
};

// what a rule did, as routing writes it (services/routing/rules/actions.py describe())
const RULE_ACTIONS: [RegExp, Key, string?][] = [
  [/^add label (.*)$/s, "rule.a.add_label"],
  [/^remove label (.*)$/s, "rule.a.remove_label"],
  [/^set status (\w+)$/, "rule.a.set_status", "status."],
  [/^set priority (\w+)$/, "rule.a.set_priority", "priority."],
  [/^set category (.*)$/s, "rule.a.set_category"],
  [/^clear category$/, "rule.a.set_category"],
  [/^move to inbox (.*)$/, "rule.a.move_to_inbox"],
  [/^assign to operator (.*)$/, "rule.a.assign"],
  [/^hand to the inbox's assignment strategy$/, "rule.a.assign_by_strategy"],
  [/^mark as spam$/, "rule.a.mark_spam"],
  [/^move to trash$/, "rule.a.move_to_trash"],
  [/^require approval \(label (.*)\)$/s, "rule.a.require_approval"],
  [/^stop further rules$/, "rule.a.stop"],
  // issue 18, second part (the template and the recipients by id: not worth showing)
  [/^(?:send )?automatic reply (?:\(template [^)]*\)|with template \S+)$/, "rule.a.auto_reply"],
  [/^notify (?:(?:operator:[0-9a-f-]+|inbox_members|role:[^,:]+)(?:, )?)+: (.*)$/s, "rule.a.notify"],
  [/^call webhook (.*)$/s, "rule.a.webhook"],
];

function ruleAction(text: string, t: (k: Key, v?: Record<string, string | number>) => string): string {
  const skill = /^require skill (.+) \(level (\d)\+\)$/s.exec(text);
  if (skill) return `${t("rule.a.require_skill")}: ${t("rule.skill_at", { name: skill[1], n: skill[2] })}`;
  for (const [re, key, prefix] of RULE_ACTIONS) {
    const m = re.exec(text);
    if (!m) continue;
    if (m[1] === undefined) return t(key);
    const value = prefix && has(`${prefix}${m[1]}`) ? t(`${prefix}${m[1]}` as Key) : m[1];
    return `${t(key)}: ${value}`;
  }
  return text;
}

/** Routing's own notes (issue 18): "rule <name>: <what it did>" names the rule that
 * routed the ticket; "reassigned: no first reply within N minutes". */
function routingNote(comment: string, t: (k: Key, v?: Record<string, string | number>) => string): string | null {
  const rule = /^rule (.+?): (.*)$/s.exec(comment);
  if (rule) return t("audit.note.rule", { name: rule[1], what: ruleAction(rule[2], t) });
  const re = /^reassigned: no first reply within (\d+) minutes$/.exec(comment);
  if (re) return t("audit.note.reassigned", { n: re[1] });
  return null;
}

/** The send a note of outbound's is about ("reply <id>", then " via <channel>" for a
 * reply through a channel, issue 21), and the rest of the note. */
const SEND_NOTE = /^(\S+ [0-9a-f-]{36})(?: via (\w+))?(?:; attempt (\d+): (.*))?$/s;

/** A send's channel (chat, api, line) named in its audit note, "" for mail. */
export function sendChannel(comment: string | null): string {
  return (comment && SEND_NOTE.exec(comment)?.[2]) || "";
}

/** Outbound's note on a send ("reply <id>; attempt N: <outcome>"): a channel's outcome
 * (issue 21) and a refusal's code in words; an SMTP server's reply stays as the server
 * said it. */
function sendNote(comment: string, t: (k: Key, v?: Record<string, string | number>) => string): string | null {
  const m = SEND_NOTE.exec(comment);
  if (!m) return null;
  if (m[3] === undefined) return m[1]; // the channel is in the action's words
  const via = (k: string) => (has(`chan.${k}`) ? t(`chan.${k}` as Key) : k);
  const said = m[4];
  let outcome: string | null = null;
  let x: RegExpExecArray | null;
  if ((x = /^delivered through (\w+) \(message (\d+)\)$/.exec(said))) outcome = t("audit.note.channel_delivered", { channel: via(x[1]), n: x[2] });
  else if ((x = /^handed to (\w+): the channel delivers it \(with retries\)$/.exec(said))) outcome = t("audit.note.channel_pending", { channel: via(x[1]) });
  else if ((x = /^handed to (\w+): its delivery failed \((.*)\) — listed for administrators to retry$/s.exec(said)))
    outcome = t("audit.note.channel_dead", { channel: via(x[1]), error: x[2] });
  else if ((x = /^channel delivery failed \((\w+), (\d+) attempts\): (.*)$/s.exec(said)))
    outcome = t("audit.note.channel_failed", { channel: via(x[1]), n: x[2], error: x[3] });
  else outcome = reasonText(said, t);
  return `${m[1]}; ${t("audit.note.attempt", { n: m[3] })}: ${outcome ?? said}`;
}

export function ActivityEntry({ entry }: { entry: AuditEntry }) {
  const { t, lang } = useI18n();
  const { dateTime } = useFormat();
  const word = (prefix: string, value: string) => {
    const key = `${prefix}${value}`;
    return has(key) ? t(key) : value;
  };
  const value = (field: string, v: string) => {
    if (!v) return "—";
    if (field === "status") return word("status.", v);
    if (field === "priority") return word("priority.", v);
    if (field === "send") return word("send.", v);
    if (field === "approval") return word("appr.state.", v);
    // flags (comma-separated, as tickets writes a list) by their meaning: routing's
    // `assign_by_strategy` reads "assign by the inbox's strategy"
    if (field === "flags") return v.split(", ").map((x) => word("audit.flag.", x)).join(", ");
    // the skills a rule requires ("billing 3+"), the detected language ("ja") in words
    if (field === "required_skills")
      return v
        .split(", ")
        .map((x) => {
          const m = /^(.+) (\d)\+$/s.exec(x);
          return m ? t("rule.skill_at", { name: m[1], n: m[2] }) : x;
        })
        .join(", ");
    if (field === "language") return languageName(v, lang);
    if (/^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(v)) return dateTime(v);
    return v;
  };
  const who =
    entry.actor === null
      ? t("audit.system")
      : entry.actor.kind === "system" && entry.actor.name === "routing"
        ? t("audit.routing")
      : entry.actor.kind === "operator"
        ? entry.actor.name || t("audit.someone")
        : entry.actor.kind === "customer"
          ? t("audit.customer", { name: entry.actor.name || entry.actor.id })
          : t("audit.system");
  // a reply through a channel is not "mail": its own words where the mail's say so
  const channel = entry.action.startsWith("send.") ? sendChannel(entry.comment) : "";
  const ofChannel = `audit.${entry.action}_channel`;
  const action =
    channel && has(ofChannel)
      ? t(ofChannel, { channel: has(`chan.${channel}`) ? t(`chan.${channel}` as Key) : channel })
      : has(`audit.${entry.action}`)
        ? t(`audit.${entry.action}` as Key)
        : t("audit.other", { action: entry.action });
  return (
    <div className="activity" data-testid="activity" data-action={entry.action}>
      <span className="muted small">{dateTime(entry.at)}</span> <strong>{who}</strong> · {action}
      {entry.changes.length > 0 && (
        <ul className="changes">
          {entry.changes.map((c, i) => (
            <li key={i}>
              {channel && c.field === "send" ? t("audit.field.send_channel") : word("audit.field.", c.field)}: {value(c.field, c.old)} → {value(c.field, c.new)}
            </li>
          ))}
        </ul>
      )}
      {entry.comment && (
        <div className="muted small pre" data-testid="activity-note">
          {NOTES[entry.comment] ? t(NOTES[entry.comment]) : (routingNote(entry.comment, t) ?? sendNote(entry.comment, t) ?? entry.comment)}
        </div>
      )}
    </div>
  );
}

export function ActivityToggle({ count, shown, more, toggle }: { count: number; shown: boolean; more: boolean; toggle: () => void }) {
  const { t } = useI18n();
  return (
    <div className="row gap small">
      <button className="link" onClick={toggle} aria-expanded={shown} data-testid="activity-toggle">
        {shown ? "▾" : "▸"} {t(shown ? "audit.hide" : "audit.show", { n: count })}
      </button>
      {shown && more && <span className="muted">{t("audit.more", { n: count })}</span>}
    </div>
  );
}
