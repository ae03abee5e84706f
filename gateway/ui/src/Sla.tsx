import { useCallback, useEffect, useState } from "react";
import { api } from "./api";
import { useFormat } from "./format";
import { Key, T, useI18n } from "./i18n";
import { live, LiveEvent } from "./live";
import { SlaState, SlaTarget, TicketSla } from "./routingTypes";

// A ticket's SLA clocks (issue 18, RTE-4; GET /api/v1/tickets/{id}/sla): each target's due
// time in the app's one date format with a countdown and a colour — ok, warning (past its
// warning time), breached (past its due time), paused (the ticket is in a pausing status:
// the business minutes left), met. The state is computed here from `due_at` and
// `warning_at` as time passes, so the colour changes without a reload; the SLA is read
// again when the ticket changes (its live events) and after a reconnect.

/** The time now, moved on every `ms`. */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), ms);
    return () => window.clearInterval(timer);
  }, [ms]);
  return now;
}

/** A target's state at `now`: running ones move from ok to warning to breached. */
export function stateAt(x: Pick<SlaTarget, "state" | "due_at" | "warning_at">, now: number): SlaState {
  if (x.state === "paused" || x.state === "met" || x.state === "none") return x.state;
  if (x.state === "breached" || (x.due_at && now >= Date.parse(x.due_at))) return "breached";
  if (x.state === "warning" || (x.warning_at && now >= Date.parse(x.warning_at))) return "warning";
  return "ok";
}

/** `1 d 2 h`, `2 h 05 min`, `4 min 09 s`: how long, coarse when far. */
export function span(ms: number, t: T, coarse = false): string {
  const s = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, "0");
  if (d > 0) return t("sla.span_dh", { d, h });
  if (h > 0) return t("sla.span_hm", { h, m: pad(m) });
  if (coarse) return t("sla.span_m", { m: Math.max(1, m) });
  return t("sla.span_ms", { m, s: pad(s % 60) });
}

/** What the countdown says of a due time: "2 h 05 min left", "overdue by 3 min 10 s". */
export function countdown(dueAt: string, now: number, t: T): string {
  const left = Date.parse(dueAt) - now;
  return left >= 0 ? t("sla.left", { s: span(left, t) }) : t("sla.overdue", { s: span(left, t) });
}

function TargetLine({ x, now }: { x: SlaTarget; now: number }) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const state = stateAt(x, now);
  let when: string;
  if (state === "paused") {
    const m = x.remaining_minutes ?? 0;
    when = m >= 0 ? t("sla.paused_left", { n: m }) : t("sla.paused_over", { n: -m });
  } else if (state === "met") when = t("sla.met_at", { at: dateTime(x.met_at) });
  else if (x.due_at) when = countdown(x.due_at, now, t);
  else when = "";
  return (
    <li className={`sla-target sla-${state}`} data-testid="sla-target" data-kind={x.kind} data-state={state}>
      <div className="row gap">
        <strong>{t(`sla.kind.${x.kind}` as Key)}</strong>
        <span className="spacer" />
        <span className={`badge sla-${state}`} data-testid="sla-state">{t(`sla.state.${state}` as Key)}</span>
      </div>
      {x.due_at && state !== "met" && (
        <div className="small">
          {t("sla.due")} <span data-testid="sla-due">{dateTime(x.due_at)}</span>
        </div>
      )}
      <div className="small sla-countdown" data-testid="sla-countdown">{when}</div>
    </li>
  );
}

/** The side panel's SLA block of a ticket; nothing when no policy applies. */
export function TicketSlaPanel({ ticketId }: { ticketId: string }) {
  const { t } = useI18n();
  const now = useNow();
  const [sla, setSla] = useState<TicketSla | null>(null);
  const load = useCallback(async () => {
    try {
      setSla(await api.get<TicketSla>(`/tickets/${ticketId}/sla`));
    } catch {
      setSla(null); // no SLA to show (none applies, or it cannot be read now)
    }
  }, [ticketId]);
  useEffect(() => {
    void load();
    const off = live.on((e: LiveEvent) => {
      const tk = e.ticket as { id?: string } | undefined;
      if (e.ticket_id === ticketId || tk?.id === ticketId) void load();
    });
    const offState = live.onState((up) => up && void load());
    return () => {
      off();
      offState();
    };
  }, [ticketId, load]);
  // read again just after the next warning or due time, when the server's state moves
  useEffect(() => {
    const next = (sla?.targets ?? [])
      .flatMap((x) => [x.warning_at, x.due_at])
      .map((x) => (x ? Date.parse(x) : NaN))
      .filter((x) => x > Date.now())
      .sort((a, b) => a - b)[0];
    if (next === undefined) return;
    const timer = window.setTimeout(() => void load(), Math.min(next - Date.now() + 1000, 2 ** 31 - 1));
    return () => window.clearTimeout(timer);
  }, [sla, load]);
  if (!sla || sla.state === "none" || !sla.policy) return null;
  return (
    <section className="sla" data-testid="sla" data-state={sla.state}>
      <div className="row gap">
        <strong>{t("sla.title")}</strong>
        <span className="spacer" />
        <span className="muted small" data-testid="sla-policy">{sla.policy.name}</span>
      </div>
      <ul>
        {sla.targets.map((x) => (
          <TargetLine key={x.kind} x={x} now={now} />
        ))}
      </ul>
    </section>
  );
}

/** A list row's next SLA due time: the countdown to the minute (the list's clock moves
 * every 30 s), red once overdue; empty when no clock runs. */
export function SlaCell({ dueAt, now }: { dueAt: string | null | undefined; now: number }) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  if (!dueAt) return <span data-testid="cell-sla" />;
  const over = Date.parse(dueAt) <= now;
  return (
    <span className={over ? "sla-cell sla-breached" : "sla-cell"} title={dateTime(dueAt)} data-testid="cell-sla" data-state={over ? "breached" : "running"}>
      {over ? t("sla.overdue_short", { s: span(Date.parse(dueAt) - now, t, true) }) : span(Date.parse(dueAt) - now, t, true)}
    </span>
  );
}
