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
// the rule's name and its message. Nothing is replayed after a reconnect: the queue
// and the ticket show the state anyway.

const MAX = 5;
const FADE_MS = 12000;

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

/** What a push says, in the operator's language; null for a kind this UI does not know. */
export function toastOf(n: Push, t: T): Shown | null {
  // routing's automatic assignment (issue 18) is named as the activity names it
  const byRouting = n.by?.kind === "system" && n.by.name === "routing";
  const name = byRouting ? t("audit.routing") : n.by?.name || t("notif.someone");
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
      title: t(n.kind === "mentioned" ? "notif.mentioned" : byRouting ? "notif.assigned_auto" : "notif.assigned", { name }),
      subject: n.ticket.subject,
      quote: n.comment?.body ?? "",
      href: `/tickets/${n.ticket.id}`,
      sticky: false,
    };
  }
  return null;
}

export function Notifications() {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const [items, setItems] = useState<Push[]>([]);
  const timers = useRef(new Map<string, number>());

  const dismiss = useCallback((id: string) => {
    window.clearTimeout(timers.current.get(id));
    timers.current.delete(id);
    setItems((xs) => xs.filter((x) => x.event_id !== id));
  }, []);

  const fadeLater = useCallback(
    (id: string) => {
      window.clearTimeout(timers.current.get(id));
      timers.current.set(id, window.setTimeout(() => dismiss(id), FADE_MS));
    },
    [dismiss],
  );
  const hold = (id: string) => {
    window.clearTimeout(timers.current.get(id));
    timers.current.delete(id);
  };

  const tRef = useRef(t);
  tRef.current = t;
  useEffect(() => {
    const off = live.on((e) => {
      if (e.type !== "notification") return;
      const n = e as unknown as Push;
      const shown = toastOf(n, tRef.current);
      if (!shown) return;
      setItems((xs) => (xs.some((x) => x.event_id === n.event_id) ? xs : [...xs, n].slice(-MAX)));
      if (!shown.sticky) fadeLater(n.event_id);
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
      {items.map((n) => {
        const v = toastOf(n, t);
        if (!v) return null;
        return (
          <div
            key={n.event_id}
            className={v.sticky ? "toast sticky" : "toast"}
            data-testid="toast"
            data-kind={n.kind}
            data-change={n.change ?? ""}
            onMouseEnter={() => hold(n.event_id)}
            onMouseLeave={() => !v.sticky && fadeLater(n.event_id)}
          >
            <button
              className="toast-open"
              onClick={() => {
                dismiss(n.event_id);
                go(v.href);
              }}
              data-testid="toast-open"
            >
              <strong data-testid="toast-title">{v.title}</strong>
              {v.subject && <span className="ellipsis" data-testid="toast-subject">{v.subject}</span>}
              {v.quote && <span className="toast-quote" data-testid="toast-quote">{v.quote}</span>}
              <time className="muted small" dateTime={n.occurred_at}>{dateTime(n.occurred_at)}</time>
            </button>
            <button
              className="link toast-close"
              aria-label={t("notif.dismiss")}
              title={t("notif.dismiss")}
              onClick={() => dismiss(n.event_id)}
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
