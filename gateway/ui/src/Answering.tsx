import { ReactNode, useState } from "react";
import { MessageSummary } from "./api";
import { useI18n } from "./i18n";
import { MailCard } from "./MailView";

// The mail being answered beside the reply editor (issue 16, UI item 3), folded to a line
// on request; the choice is remembered in this browser.

const ANSWERING_KEY = "sb.reply.answering"; // "hidden": the answered mail folded away

function answeringShown(): boolean {
  try {
    return localStorage.getItem(ANSWERING_KEY) !== "hidden";
  } catch {
    return true;
  }
}

export function AnsweringSplit({
  answered,
  forwarding,
  mayDownload,
  children,
}: {
  answered: MessageSummary | undefined;
  forwarding: boolean;
  mayDownload: boolean;
  children: ReactNode;
}) {
  const { t } = useI18n();
  const [shown, setShown] = useState(answeringShown);
  const toggle = () => {
    const next = !shown;
    setShown(next);
    try {
      localStorage.setItem(ANSWERING_KEY, next ? "shown" : "hidden");
    } catch {
      /* this time only */
    }
  };
  const label = t(forwarding ? "reply.forwarding" : "reply.answering");
  return (
    <div className={answered && shown ? "reply-split" : "reply-split folded"}>
      {answered && (
        <aside className="answering" aria-label={label} data-testid="answering">
          <div className="row gap">
            <strong className="small">{label}</strong>
            {!shown && (
              <span className="muted small ellipsis">
                {answered.from?.name || answered.from?.address} — {answered.subject}
              </span>
            )}
            <span className="spacer" />
            <button className="link small" onClick={toggle} aria-expanded={shown} data-testid="answering-toggle">
              {shown ? t("reply.answering_hide") : t("reply.answering_show")}
            </button>
          </div>
          {shown && (
            <div className="answering-mail">
              <MailCard summary={answered} open mayDownload={mayDownload} />
            </div>
          )}
        </aside>
      )}
      {children}
    </div>
  );
}
