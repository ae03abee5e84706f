import { useCallback, useEffect, useRef, useState } from "react";
import { go } from "./App";
import { Approval } from "./approvalTypes";
import { useFormat } from "./format";
import { T, useI18n } from "./i18n";
import { live } from "./live";

// Notifications (issue 17, item 7): each `notification` push of the live socket
// (gateway/openapi.yaml, /api/v1/live) as a toast in the bottom-right corner — an approval
// to decide, a reminder of a late one, what became of one's own request, a ticket assigned
// to one, a mention. A click opens the request or the ticket; at most MAX are stacked, and
// each fades after FADE_MS unless it is a reminder or a send-back (those wait to be
// dismissed) or the pointer rests on it. A routing rule's notify action (kind "rule") shows
// the rule's name and its message. Several tickets assigned to one at once (routing hands
// over a backlog when one comes online) are one toast, "N tickets assigned to you", opening
// one's own tickets — a toast per ticket would cover the ticket's side panel. Nothing is
// replayed after a reconnect: the queue and the ticket show the state anyway.

const MAX = 3;
const FADE_MS = 12000;
const GROUP = "assigned"; // the key of the one toast of several assignments

interface Push {
  type: "notification";
  kind: "approval_requested" | "approval_reminder" | "approval_decided" | "assigned" | "mentioned" | string;
  change?: string;
  event_id: string;
  occurred_at: string;
  by: { kind: string; id: string; name: string } | null;
  approval?: Approval;
  ticket?: { id: string; subject: string };
  comment?: { id: string; body: string };
  rule?: { id: string; name: string }; // kind "rule": a routing rule's notify action (issue 18)
  message?: string;
}

interface Shown {
  title: string;
  subject: string;
  quote: string;
  href: string;
  sticky: boolean;
}

const isAssigned = (n: Push) => n.kind === "assigned" && !!n.ticket;
const byRouting = (n: Push) => n.by?.kind === "system" && n.by.name === "routing";

/** What a push says, in the operator's language; null for a kind this UI does not know. */
export function toastOf(n: Push, t: T): Shown | null {
  // routing's automatic assignment (issue 18) is named as the activity names it
  const auto = byRouting(n);
  const name = auto ? t("audit.routing") : n.by?.name || t("notif.someone");
  const a = n.approval;
  if (a) {
    const href = `/approvals/${a.id}`;
    const shown = { subject: a.subject, quote: "", href, sticky: false };
    if (n.kind === "approval_reminder") {
      return { ...shown, title: t("notif.approval_reminder", { n: a.stage + 1 }), sticky: true };
    }
    if (n.kind === "approval_requested") {
      // requested anew, or an earlier stage approved it and now it is this one's turn
      const title =
        n.change === "approved" ? t("notif.approval_next", { name, n: a.stage }) : t("notif.approval_requested", { name });
      return { ...shown, title };
    }
    switch (n.change) {
      case "sent_back": {
        const last = [...a.decisions].reverse().find((d) => d.verdict === "send_back");
        return { ...shown, title: t("notif.sent_back", { name }), quote: last?.comment ?? "", sticky: true };
      }
      case "approved":
        return { ...shown, title: t("notif.approved", { name }) };
      case "sent":
        return { ...shown, title: t("notif.sent", { name }) };
      case "voided":
        return { ...shown, title: t("notif.voided") };
      case "cancelled":
        return { ...shown, title: t("notif.cancelled", { name }) };
      default:
        return null;
    }
  }
  if (n.ticket && n.kind === "rule") {
    return {
      title: t("notif.rule", { rule: n.rule?.name ?? "" }),
      subject: n.ticket.subject,
      quote: n.message ?? "",
      href: `/tickets/${n.ticket.id}`,
      sticky: false,
    };
  }
  if (n.ticket && (n.kind === "assigned" || n.kind === "mentioned")) {
    return {
      // a person assigns ("Aiko assigned…"); routing is not a person to thank by name
      title: t(n.kind === "mentioned" ? "notif.mentioned" : auto ? "notif.assigned_auto" : "notif.assigned", { name }),
      subject: n.ticket.subject,
      quote: n.comment?.body ?? "",
      href: `/tickets/${n.ticket.id}`,
      sticky: false,
    };
  }
  return null;
}

/** Several assignments as one toast: how many, by whom (routing, or one person), their
 * subjects (newest first), opening one's own tickets. */
export function groupOf(ns: Push[], t: T): Shown {
  const people = new Set(ns.map((n) => (byRouting(n) ? "" : n.by?.name || t("notif.someone"))));
  const n = ns.length;
  const title = people.size === 1 && people.has("")
    ? t("notif.assigned_many_auto", { n })
    : people.size === 1
      ? t("notif.assigned_many_by", { n, name: [...people][0] })
      : t("notif.assigned_many", { n });
  return {
    title,
    subject: "",
    quote: [...ns].reverse().map((x) => x.ticket?.subject ?? "").join("\n"),
    href: "/inbox/all/open/mine",
    sticky: false,
  };
}

/** The toasts to show: each push as its own, but the assignments (when more than one) as
 * one, at the place of the newest of them. */
export function stackOf(items: Push[]): { id: string; pushes: Push[] }[] {
  const assigned = items.filter(isAssigned);
  const out: { id: string; pushes: Push[] }[] = [];
  for (const n of items) {
    if (assigned.length > 1 && isAssigned(n)) {
      if (n === assigned[assigned.length - 1]) out.push({ id: GROUP, pushes: assigned });
    } else out.push({ id: n.event_id, pushes: [n] });
  }
  return out.slice(-MAX);
}

export function Notifications() {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const [items, setItems] = useState<Push[]>([]);
  const timers = useRef(new Map<string, number>());

  const dismiss = useCallback((ids: string[]) => {
    for (const id of ids) {
      window.clearTimeout(timers.current.get(id));
      timers.current.delete(id);
    }
    setItems((xs) => xs.filter((x) => !ids.includes(x.event_id)));
  }, []);

  const fadeLater = useCallback(
    (ids: string[]) => {
      for (const id of ids) {
        window.clearTimeout(timers.current.get(id));
        timers.current.set(id, window.setTimeout(() => dismiss([id]), FADE_MS));
      }
    },
    [dismiss],
  );
  const hold = (ids: string[]) => {
    for (const id of ids) {
      window.clearTimeout(timers.current.get(id));
      timers.current.delete(id);
    }
  };

  const tRef = useRef(t);
  tRef.current = t;
  useEffect(() => {
    const off = live.on((e) => {
      if (e.type !== "notification") return;
      const n = e as unknown as Push;
      const shown = toastOf(n, tRef.current);
      if (!shown) return;
      setItems((xs) => {
        if (xs.some((x) => x.event_id === n.event_id)) return xs;
        const next = [...xs, n];
        // a further assignment keeps the one toast of them all for another FADE_MS
        if (isAssigned(n)) fadeLater(next.filter(isAssigned).map((x) => x.event_id));
        // what no longer fits the stack is dropped with its timer
        const kept = new Set(stackOf(next).flatMap((g) => g.pushes.map((x) => x.event_id)));
        for (const x of next) if (!kept.has(x.event_id)) hold([x.event_id]);
        return next.filter((x) => kept.has(x.event_id));
      });
      if (!shown.sticky && !isAssigned(n)) fadeLater([n.event_id]);
    });
    const pending = timers.current;
    return () => {
      off();
      for (const id of pending.values()) window.clearTimeout(id);
      pending.clear();
    };
  }, [fadeLater]);

  return (
    <div className="toasts" role="status" aria-live="polite" aria-label={t("notif.region")} data-testid="notifications">
      {stackOf(items).map(({ id, pushes }) => {
        const n = pushes[pushes.length - 1];
        const v = pushes.length > 1 ? groupOf(pushes, t) : toastOf(n, t);
        if (!v) return null;
        const ids = pushes.map((x) => x.event_id);
        return (
          <div
            key={id}
            className={v.sticky ? "toast sticky" : "toast"}
            data-testid="toast"
            data-kind={n.kind}
            data-change={n.change ?? ""}
            data-count={pushes.length}
            onMouseEnter={() => hold(ids)}
            onMouseLeave={() => !v.sticky && fadeLater(ids)}
          >
            <button
              className="toast-open"
              onClick={() => {
                dismiss(ids);
                go(v.href);
              }}
              data-testid="toast-open"
            >
              <strong data-testid="toast-title">{v.title}</strong>
              {v.subject && <span className="ellipsis" data-testid="toast-subject">{v.subject}</span>}
              {v.quote && <span className={pushes.length > 1 ? "toast-quote toast-list" : "toast-quote"} data-testid="toast-quote">{v.quote}</span>}
              <time className="muted small" dateTime={n.occurred_at}>{dateTime(n.occurred_at)}</time>
            </button>
            <button
              className="link toast-close"
              aria-label={t("notif.dismiss")}
              title={t("notif.dismiss")}
              onClick={() => dismiss(ids)}
              data-testid="toast-dismiss"
            >
              ×
            </button>
          </div>
        );
      })}
    </div>
  );
}
