// The compact composer of a chat ticket (issue 21): one text box under the conversation;
// Enter sends, Shift+Enter starts a new line (never while an input method composes). It
// goes the same way as the reply editor: the reply lock (taken at the first keystroke and
// kept while writing), a draft of kind "reply" (plain text, no quote, no signature), the
// draft's checks, then the send — or, for whoever needs approval, the approval request.
// While the operator writes, the visitor is told (`chat.typing`, at most every few seconds).
import { KeyboardEvent, useCallback, useEffect, useRef, useState } from "react";
import { api, ApiError, Checks, Draft, ReplyLock, TicketDetail } from "./api";
import { Session } from "./App";
import { ChecksDialog } from "./ChecksDialog";
import { errorText } from "./errors";
import { useI18n } from "./i18n";
import { live } from "./live";
import { releaseLock } from "./ReplyEditor";

const RENEW_MS = 20000;
const TYPING_EVERY_MS = 3000; // "still typing" again at most this often
const IDLE_AFTER_MS = 4000; // no keystroke this long: "stopped typing"

/** Tell the visitor an operator types on this ticket (throttled) and stops. */
export function useTypingSignal(ticketId: string, enabled: boolean): (typing: boolean) => void {
  const last = useRef(0);
  const on = useRef(false);
  const idle = useRef<number | undefined>(undefined);
  const say = useCallback(
    (typing: boolean) => {
      if (!enabled) return;
      window.clearTimeout(idle.current);
      const now = Date.now();
      if (typing) {
        idle.current = window.setTimeout(() => say(false), IDLE_AFTER_MS);
        if (on.current && now - last.current < TYPING_EVERY_MS) return;
      } else if (!on.current) return;
      on.current = typing;
      last.current = now;
      live.say({ type: "chat.typing", ticket_id: ticketId, typing });
    },
    [ticketId, enabled],
  );
  useEffect(() => () => say(false), [say]);
  return say;
}

export function ChatComposer({
  ticket,
  session,
  blocked,
  onSent,
  onFull,
}: {
  ticket: TicketDetail;
  session: Session;
  blocked: string; // why a reply may not be written now ("" when it may)
  onSent: (text: string, approval: boolean) => void;
  onFull: () => void;
}) {
  const { t, lang } = useI18n();
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const [checks, setChecks] = useState<{ checks: Checks; draft: Draft; fence: number } | null>(null);
  const fence = useRef<number | null>(null);
  const typing = useTypingSignal(ticket.id, true);
  const mayDirectSend = ticket.actions.send_without_approval ?? session.may("send_without_approval");

  // the lock is kept while the operator writes, and let go when the composer goes
  useEffect(() => {
    const h = window.setInterval(async () => {
      if (fence.current === null) return;
      try {
        await api.post(`/tickets/${ticket.id}/lock/renew`, { fence: fence.current });
      } catch {
        fence.current = null; // taken over or expired: taken again at the next send
      }
    }, RENEW_MS);
    const unload = () => fence.current !== null && releaseLock(ticket.id, fence.current);
    window.addEventListener("pagehide", unload);
    return () => {
      window.clearInterval(h);
      window.removeEventListener("pagehide", unload);
      unload();
    };
  }, [ticket.id]);

  const lock = async (): Promise<number> => {
    if (fence.current !== null) return fence.current;
    const l = await api.post<ReplyLock>(`/tickets/${ticket.id}/lock`);
    fence.current = l.fence;
    return l.fence;
  };

  const draftFor = async (f: number): Promise<Draft> => {
    const mine = (await api.get<{ items: Draft[] }>(`/tickets/${ticket.id}/drafts`)).items.find(
      (d) => d.state === "open" && d.kind === "reply" && d.author?.id === session.me.id,
    );
    return mine ?? (await api.post<Draft>(`/tickets/${ticket.id}/drafts`, { kind: "reply", fence: f, include_quote: false, language: lang }));
  };

  const finish = async (draft: Draft, f: number, acknowledged: string[]) => {
    const body = text.trim();
    if (mayDirectSend) await api.post(`/drafts/${draft.id}/send`, { fence: f, acknowledged_warnings: acknowledged });
    else await api.post(`/drafts/${draft.id}/approval`, {});
    fence.current = null; // the server let the lock go with the send
    setText("");
    setChecks(null);
    onSent(body, !mayDirectSend);
  };

  const send = async () => {
    const body = text.trim();
    if (!body || busy || blocked) return;
    setBusy(true);
    setError("");
    typing(false);
    try {
      const f = await lock();
      const d = await draftFor(f);
      const r = d.current;
      const saved = await api.put<Draft>(`/drafts/${d.id}`, {
        fence: f,
        base_revision: r.revision,
        from_address: r.from_address,
        from_name: r.from_name,
        to: r.to,
        cc: [],
        bcc: [],
        subject: r.subject,
        body_text: body,
        body_html: "",
        signature_text: "",
        signature_html: "",
        include_quote: false,
        attachment_ids: [],
      });
      const c = mayDirectSend ? await api.get<Checks>(`/drafts/${saved.id}/checks`) : null;
      if (c && c.findings.length > 0) setChecks({ checks: c, draft: saved, fence: f });
      else await finish(saved, f, []);
    } catch (e) {
      if (e instanceof ApiError && e.status === 409 && e.code !== "locked" && fence.current !== null) {
        // refused (the reply window closed, a stale fence…): nobody else is kept from
        // answering while this operator reads why
        releaseLock(ticket.id, fence.current);
        fence.current = null;
      }
      setError(e instanceof ApiError && e.code === "locked" ? t("ticket.reply_disabled", { name: (e.body?.holder as { name?: string } | undefined)?.name ?? "" }) : errorText(e, t, "reply"));
    } finally {
      setBusy(false);
    }
  };

  const onKey = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key !== "Enter" || e.shiftKey || e.nativeEvent.isComposing || e.keyCode === 229) return;
    e.preventDefault();
    void send();
  };

  return (
    <section className="card chat-composer" data-testid="chat-composer">
      {error && <p className="error" role="alert" data-testid="chat-error">{error}</p>}
      {blocked && <p className="muted small">{blocked}</p>}
      <textarea
        aria-label={t("chat.composer")}
        placeholder={t("chat.composer_hint")}
        rows={2}
        value={text}
        disabled={!!blocked}
        onChange={(e) => {
          setText(e.target.value);
          typing(e.target.value.length > 0);
        }}
        onKeyDown={onKey}
        onBlur={() => typing(false)}
        data-testid="chat-input"
      />
      <div className="row gap">
        <span className="muted small">{t("chat.composer_hint")}</span>
        <span className="spacer" />
        <button type="button" onClick={onFull} disabled={!!blocked} data-testid="chat-full-editor">{t("chat.full_editor")}</button>
        <button type="button" className="primary" disabled={!text.trim() || busy || !!blocked} onClick={() => void send()} data-testid="chat-send">
          {mayDirectSend ? t("chat.send") : t("chat.request")}
        </button>
      </div>
      {checks && (
        <ChecksDialog
          checks={checks.checks}
          later={false}
          onCancel={() => setChecks(null)}
          onConfirm={(codes) => void finish(checks.draft, checks.fence, codes).catch((e) => setError(errorText(e, t, "reply")))}
        />
      )}
    </section>
  );
}
