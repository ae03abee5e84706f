import { useState } from "react";
import { api, Send } from "./api";
import { Session } from "./App";
import { DateTimeInput } from "./DateTimeInput";
import { errorText, reasonText } from "./errors";
import { useFormat } from "./format";
import { Key, useI18n } from "./i18n";

// A ticket's outgoing mail with its delivery state, and "cancel" and "reschedule" while
// scheduled — offered to its author and to who may take over reply locks and send, as
// the server allows (issue 16).
export function TicketSends({
  sends,
  session,
  reload,
  say,
}: {
  sends: Send[];
  session: Session;
  reload: () => void;
  say: (text: string) => void;
}) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const [moveTo, setMoveTo] = useState<Record<string, string>>({});
  // changing or cancelling a send: its author, or who may take over (the server decides too)
  const mayChangeSend = (s: Send) =>
    session.may("send_without_approval") && (s.operator?.id === session.me.id || session.may("take_over_locks"));

  const cancelSend = async (sendId: string) => {
    try {
      await api.post(`/sends/${sendId}/cancel`);
      reload();
    } catch (e) {
      say(errorText(e, t));
    }
  };

  const reschedule = async (sendId: string) => {
    const at = moveTo[sendId];
    if (!at) return;
    try {
      await api.put(`/sends/${sendId}/schedule`, { send_at: at });
      setMoveTo((m) => ({ ...m, [sendId]: "" }));
      reload();
    } catch (e) {
      say(errorText(e, t));
    }
  };

  if (sends.length === 0) return null;
  return (
    <div className="sends" data-testid="sends">
      <strong>{t("ticket.sends")}</strong>
      <ul>
        {sends.map((s) => (
          <li key={s.id} data-testid="send" data-state={s.state}>
            <span className={`badge state-${s.state}`}>{t(`send.${s.state}` as Key)}</span>{" "}
            <span className="small">{s.subject}</span>
            <div className="muted small">
              {s.state === "scheduled" && s.send_at && t("send.at", { t: dateTime(s.send_at) })}
              {s.state === "sent" && s.sent_at && t("send.at", { t: dateTime(s.sent_at) })}
              {s.last_reply && s.state !== "sent" && !(s.state === "bounced" && s.bounce) && (
                <span data-testid="send-reason">
                  {" "}
                  {reasonText(s.last_reply.message, t) ?? `${s.last_reply.code ?? ""} ${s.last_reply.message}`}
                </span>
              )}
              {s.state === "bounced" && s.bounce && <span data-testid="send-bounce"> {s.bounce}</span>}
            </div>
            {s.state === "scheduled" && mayChangeSend(s) && (
              <div className="row gap wrap">
                <button className="small" onClick={() => void cancelSend(s.id)} data-testid="send-cancel">{t("send.cancel")}</button>
                <DateTimeInput
                  value={moveTo[s.id] ?? s.send_at ?? ""}
                  onChange={(v) => setMoveTo((m) => ({ ...m, [s.id]: v }))}
                  label={t("send.reschedule")}
                  testId="send-move-at"
                />
                <button
                  className="small"
                  disabled={!moveTo[s.id] || moveTo[s.id] === s.send_at}
                  onClick={() => void reschedule(s.id)}
                  data-testid="send-move"
                >
                  {t("send.reschedule")}
                </button>
              </div>
            )}
          </li>
        ))}
      </ul>
    </div>
  );
}
