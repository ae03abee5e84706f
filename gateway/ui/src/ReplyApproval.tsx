import { Approval } from "./approvalTypes";
import { useFormat } from "./format";
import { useI18n } from "./i18n";

// The reply editor's part of approval before send (issue 17): what the draft's last
// round says when its author opens it again (sent back with the approver's comment,
// approved, voided, cancelled), and the request's own fields — "request approval" for
// anyone who may send directly, and the handover note (申し送り).

/** The last round of the draft, above the editor; nothing for a pending or sent one. */
export function RoundNotice({ round, revision }: { round: Approval | undefined; revision: number }) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  if (!round) return null;
  const last = round.decisions[round.decisions.length - 1];
  const who = round.finished_by?.name || last?.approver.name || "?";
  const at = dateTime(round.finished_at ?? last?.decided_at);
  if (round.state === "sent_back") {
    const back = [...round.decisions].reverse().find((d) => d.verdict === "send_back");
    return (
      <div className="notice sent-back" role="status" data-testid="sent-back">
        <strong>{t("appr.sent_back_by", { name: back?.approver.name || who, at: dateTime(back?.decided_at) || at })}</strong>
        <p className="pre" data-testid="sent-back-comment">{back?.comment}</p>
      </div>
    );
  }
  if (round.state === "approved")
    return (
      <p className="notice" role="status" data-testid="round-approved">
        {round.revision === revision ? t("appr.approved_by", { name: who, at }) : t("appr.approved_changed", { name: who, at })}
      </p>
    );
  if (round.state === "voided" || round.state === "cancelled")
    return (
      <p className="notice" role="status" data-testid={`round-${round.state}`}>
        {t(round.state === "voided" ? "appr.voided_note" : "appr.cancelled_note", { name: who, at })}
      </p>
    );
  return null;
}

/** "Request approval" (for those who may send without it) and the handover note. */
export function RequestFields({
  needed,
  asking,
  setAsking,
  note,
  setNote,
}: {
  needed: boolean;
  asking: boolean;
  setAsking: (v: boolean) => void;
  note: string;
  setNote: (v: string) => void;
}) {
  const { t } = useI18n();
  return (
    <>
      {!needed && (
        <label className="check" title={t("appr.request_tick_hint")}>
          <input type="checkbox" checked={asking} onChange={(e) => setAsking(e.target.checked)} data-testid="request-approval" />{" "}
          {t("appr.request_tick")}
        </label>
      )}
      {(needed || asking) && (
        <label className="note-field">
          {t("appr.note")}{" "}
          <input
            value={note}
            onChange={(e) => setNote(e.target.value)}
            placeholder={t("appr.note_hint")}
            maxLength={2000}
            data-testid="approval-note"
          />
        </label>
      )}
    </>
  );
}
