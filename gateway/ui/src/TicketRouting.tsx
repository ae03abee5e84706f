import { useEffect, useState } from "react";
import { TicketDetail } from "./api";
import { DateTimeInput } from "./DateTimeInput";
import { languageName, useFormat } from "./format";
import { useI18n } from "./i18n";
import { useNow } from "./Sla";

// What routing knows of a ticket, in its side panel (issue 18, second part): the date a
// pending ticket is pending until (rules on "pending date reached" run then; set and
// cleared here, PATCH pending_until), and its routing facts — the language detected
// from the customer's first mail, the priority score (minutes waited + priority + the
// customer's value, counted on as the minutes pass), the skills it needs. (The customer's
// value and VIP are on the contact's card.)

/** The score now: one point per minute since `priority_score_since`. */
export function scoreAt(t: Pick<TicketDetail, "priority_score" | "priority_score_since">, now: number): number | null {
  if (t.priority_score_since) return Math.max(0, Math.floor((now - Date.parse(t.priority_score_since)) / 60_000));
  return t.priority_score ?? null;
}

export function PendingUntil({
  ticket,
  change,
  disabled,
}: {
  ticket: TicketDetail;
  change: (body: Record<string, unknown>) => Promise<void>;
  disabled: boolean;
}) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const stored = ticket.pending_until ?? "";
  const [draft, setDraft] = useState(stored);
  useEffect(() => setDraft(stored), [stored]);
  if (ticket.status !== "pending" && !stored) return null;
  return (
    <div className="pending-until" data-testid="pending-until">
      <span>{t("tk.pending_until")}</span>
      <div className="small" data-testid="pending-until-value">{stored ? dateTime(stored) : <span className="muted">{t("tk.pending_none")}</span>}</div>
      {!disabled && ticket.status === "pending" && (
        <>
          <DateTimeInput value={draft} onChange={setDraft} fromDays={0} toDays={365} testId="pending-at" label={t("tk.pending_until")} />
          <div className="row gap">
            <button className="small" disabled={!draft || draft === stored} onClick={() => void change({ pending_until: draft })} data-testid="pending-set">
              {t("tk.pending_set")}
            </button>
            {stored && (
              <button className="small" onClick={() => void change({ pending_until: null })} data-testid="pending-clear">
                {t("tk.pending_clear")}
              </button>
            )}
          </div>
          <div className="muted small">{t("tk.pending_help")}</div>
        </>
      )}
    </div>
  );
}

export function RoutingFacts({ ticket }: { ticket: TicketDetail }) {
  const { t, lang } = useI18n();
  const now = useNow(30_000);
  const score = scoreAt(ticket, now);
  const skills = ticket.required_skills ?? [];
  // a server without these facts sends none of them
  if (score === null && ticket.language === undefined) return null;
  return (
    <dl className="small facts routing-facts" data-testid="routing-facts">
      {score !== null && (
        <>
          <dt title={t("tk.score_help")}>{t("tk.score")}</dt>
          <dd title={t("tk.score_help")} data-testid="priority-score">{score.toLocaleString(lang)}</dd>
        </>
      )}
      <dt>{t("tk.language")}</dt>
      <dd data-testid="ticket-language" data-lang={ticket.language ?? ""}>{ticket.language ? languageName(ticket.language, lang) : t("rule.language_unknown")}</dd>
      {skills.length > 0 && (
        <>
          <dt>{t("tk.skills")}</dt>
          <dd data-testid="required-skills">{skills.map((s) => t("rule.skill_at", { name: s.name, n: s.min_level })).join(", ")}</dd>
        </>
      )}
    </dl>
  );
}
