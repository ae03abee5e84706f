import { useCallback, useEffect, useRef, useState } from "react";
import { shortcutKey } from "./Dialog";
import { api, ApiError, OperatorBrief, PRIORITIES, ReplyLock, Send, STATUSES, Ticket, TicketDetail } from "./api";
import { ActivityEntry, ActivityToggle, merged, useActivity } from "./Activity";
import { Session } from "./App";
import { errorText } from "./errors";
import { useFormat } from "./format";
import { Key, useI18n } from "./i18n";
import { live, LiveEvent } from "./live";
import { MailCard } from "./MailView";
import { ReplyEditor } from "./ReplyEditor";
import { TicketApprovals, useTicketApprovals } from "./TicketApproval";
import { TicketSends } from "./TicketSends";
import { ContactCard } from "./ContactCard";
import { CustomerData } from "./CustomerData";
import { TicketSlaPanel } from "./Sla";
import { PendingUntil, RoutingFacts } from "./TicketRouting";
import { surveyed, WithoutSurvey } from "./adminSurvey";
import { ChannelIcon, MESSAGE_CHANNELS, ticketChannel } from "./channels";
import { ChatBubble, ChatStatus, LiveBubble, ReplyWindow, useChat } from "./ChatView";
import { ChatComposer, useTypingSignal } from "./ChatComposer";
import { CommentBox, MemoForm } from "./TicketNotes";

// a send's change in the history: asked at once and again after these delays (tickets
// audits it from the same event the push comes from, so it may not be written yet)
const AUDIT_AGAIN_MS = [0, 1000, 3000];

export function TicketView({ id, session }: { id: string; session: Session }) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const activity = useActivity(id);
  const reloadActivity = activity.reload;
  const [ticket, setTicket] = useState<TicketDetail | null>(null);
  const [error, setError] = useState<{ status: number; message: string } | null>(null);
  const [lock, setLock] = useState<ReplyLock | null>(null);
  const [sends, setSends] = useState<Send[]>([]);
  const approvals = useTicketApprovals(
    id,
    sends.flatMap((s) => (s.draft_id ? [s.draft_id] : [])),
  );
  // who sent each reply (by its Message-ID): a chat reply's bubble names the operator
  const senders = new Map(sends.flatMap((s) => (s.operator && s.message_id ? [[s.message_id, s.operator.name] as const] : [])));
  const [operators, setOperators] = useState<OperatorBrief[]>([]);
  const [replying, setReplying] = useState<{ kind: string; fence: number } | null>(null);
  const [lost, setLost] = useState<string>("");
  const [notice, setNotice] = useState("");
  const [label, setLabel] = useState("");
  const [noSurvey, setNoSurvey] = useState(false); // "resolve without survey" on the status change
  const [category, setCategory] = useState<string | null>(null);
  const [transfer, setTransfer] = useState({ inbox: "", note: "" });
  const reloadTimer = useRef<number | undefined>(undefined);
  const auditTimers = useRef<number[]>([]);
  // why Reply may not be used at all now ("" when it may): `r` does nothing then
  const replyBlocked = useRef("");
  // a chat, API or LINE ticket: its conversation, live messages and typing (issue 21)
  const channel = ticketChannel(ticket?.from);
  const chat = useChat(id, ticket?.messages ?? [], MESSAGE_CHANNELS.has(channel));
  const isChat = MESSAGE_CHANNELS.has(channel) || !!chat.conversation;
  const typing = useTypingSignal(id, isChat);

  const load = useCallback(async () => {
    try {
      const tk = await api.get<TicketDetail>(`/tickets/${id}`);
      setTicket(tk);
      setLock(tk.lock);
      setError(null);
      void reloadActivity();
    } catch (e) {
      setError({ status: e instanceof ApiError ? e.status : 0, message: errorText(e, t) });
    }
  }, [id, t, reloadActivity]);

  const loadSends = useCallback(async () => {
    try {
      setSends((await api.get<{ items: Send[] }>(`/tickets/${id}/sends`)).items);
    } catch {
      /* shown empty */
    }
  }, [id]);

  useEffect(() => {
    void load();
    void loadSends();
    void api.get<{ items: OperatorBrief[] }>("/operators").then((r) => setOperators(r.items)).catch(() => {});
  }, [load, loadSends]);

  useEffect(() => {
    const soon = () => {
      window.clearTimeout(reloadTimer.current);
      reloadTimer.current = window.setTimeout(() => void load(), 150);
    };
    const off = live.on((e: LiveEvent) => {
      if (e.type.startsWith("lock.") && e.ticket_id === id) {
        setLock((e.lock as ReplyLock | null) ?? null);
        const prev = e.previous_holder as { id: string } | null;
        if (e.type === "lock.taken_over" && prev?.id === session.me.id) {
          const holder = (e.lock as ReplyLock | null)?.holder.name ?? "";
          setLost(holder);
        }
        return;
      }
      if (e.type === "send.changed") {
        const s = e.send as { ticket_id: string | null };
        if (s.ticket_id === id) {
          void loadSends();
          // who cancelled or moved it, and how each attempt went, is in the history — which
          // tickets writes from the same event, maybe after this push: asked again later
          auditTimers.current.forEach((h) => window.clearTimeout(h));
          auditTimers.current = AUDIT_AGAIN_MS.map((ms) => window.setTimeout(() => void reloadActivity(), ms));
        }
        return;
      }
      if (e.type === "ticket.left") {
        if (e.ticket_id === id) setError({ status: 410, message: "" });
        return;
      }
      if (e.type === "access.changed") {
        soon(); // the operator may no longer see it (then its load says so)
        return;
      }
      const tk = e.ticket as Ticket | undefined;
      if (tk && tk.id === id) soon();
    });
    const offState = live.onState((up) => {
      if (up) {
        void load();
        void loadSends();
      }
    });
    return () => {
      off();
      offState();
      window.clearTimeout(reloadTimer.current);
      auditTimers.current.forEach((h) => window.clearTimeout(h));
    };
  }, [id, load, loadSends, reloadActivity, session.me.id]);

  const back = () => {
    location.hash = sessionStorage.getItem("sb.lastList") || "#/inbox/all/open";
  };

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (!shortcutKey(e)) return; // not in a field, nor behind an open dialog
      if (e.key === "Escape" && !replying) back();
      if (e.key === "r" && !replying && !replyBlocked.current) {
        e.preventDefault();
        void startReply("reply");
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  });

  const change = async (body: Record<string, unknown>) => {
    try {
      await api.patch(`/tickets/${id}`, body);
      await load();
    } catch (e) {
      setNotice(errorText(e, t));
    }
  };

  const startReply = async (kind: string) => {
    setNotice("");
    setLost("");
    try {
      const l = await api.post<ReplyLock>(`/tickets/${id}/lock`);
      setLock(l);
      setReplying({ kind, fence: l.fence });
    } catch (e) {
      if (e instanceof ApiError && e.code === "locked") {
        const holder = (e.body?.holder as { name: string } | undefined)?.name ?? "";
        setNotice(t("ticket.reply_disabled", { name: holder }));
      } else setNotice(errorText(e, t));
    }
  };

  const takeOver = async () => {
    try {
      const l = await api.post<ReplyLock>(`/tickets/${id}/lock/takeover`);
      setLock(l);
      setReplying({ kind: "reply", fence: l.fence });
    } catch (e) {
      setNotice(errorText(e, t));
    }
  };

  const doTransfer = async () => {
    if (!transfer.inbox) return;
    try {
      await api.post(`/tickets/${id}/transfer`, { inbox_id: transfer.inbox, note: transfer.note });
      setTransfer({ inbox: "", note: "" });
      await load();
    } catch (e) {
      setNotice(errorText(e, t));
    }
  };

  if (error)
    return (
      <div className="pad">
        <button className="link" onClick={back}>← {t("ticket.back")}</button>
        <p className="error" role="alert" data-testid="ticket-error">
          {error.status === 404
            ? t("ticket.not_found")
            : error.status === 410
              ? t("ticket.left")
              : error.message}
        </p>
      </div>
    );
  if (!ticket) return <div className="pad muted">{t("list.loading")}</div>;

  const a = ticket.actions;
  const surveyOn = surveyed(session.inboxes, [ticket.inbox.id]);
  const mine = lock && lock.holder.id === session.me.id;
  const otherHolder = lock && !mine ? lock.holder.name : "";
  const mayTakeOver = session.may("take_over_locks") && !!otherHolder;
  // Who may not send without approval (a trainee) replies too, and requests approval
  // instead of sending (issue 17); the ticket's actions say, the server decides again.
  const needsApproval = !(a.send_without_approval ?? session.may("send_without_approval"));
  // the caller's own reply awaiting approval is frozen: shown above, not opened again
  const myPending = approvals.items.some((x) => x.draft?.state === "in_approval" && x.draft.author?.id === session.me.id);
  const replyReason = !a.reply
    ? t(needsApproval ? "ticket.needs_approval" : "ticket.no_reply_permission")
    : myPending
      ? t("appr.read_only")
      : otherHolder
        ? t("ticket.reply_disabled", { name: otherHolder })
        : "";
  replyBlocked.current = !a.reply || myPending ? replyReason : ""; // a held lock: r says who holds it
  const lastMail = [...ticket.messages].reverse().find((m) => m.channel !== "phone");

  return (
    <div className="ticket-screen" data-testid="ticket-screen">
      <main className="ticket-main">
        <div className="row">
          <button className="link" onClick={back} data-testid="back">← {t("ticket.back")}</button>
        </div>
        <h1 data-testid="ticket-subject">
          <ChannelIcon kind={channel} /> <span className="muted">#{ticket.number}</span> {ticket.subject}
        </h1>
        <div className="muted small" data-testid="ticket-inbox">{ticket.inbox.name}</div>
        {ticket.merged_into && <p className="notice">{t("ticket.merged")}</p>}
        {otherHolder && (
          <div className="lockbar" data-testid="lock-banner" role="status">
            {t("lock.replying", { name: otherHolder })}
            {mayTakeOver && (
              <button onClick={takeOver} data-testid="take-over">{t("ticket.take_over")}</button>
            )}
          </div>
        )}
        {notice && <div className="notice" role="alert" data-testid="ticket-notice">{notice}</div>}
        <ReplyWindow conversation={chat.conversation} />
        {!replying && (
          <div className="row gap">
            {(["reply", "reply_all", "forward"] as const).map((k) => (
              <button
                key={k}
                className={k === "reply" ? "primary" : ""}
                disabled={!!replyReason}
                title={replyReason}
                onClick={() => void startReply(k)}
                data-testid={`btn-${k}`}
              >
                {t(`ticket.${k}` as Key)}
              </button>
            ))}
            {replyReason && <span className="muted small" data-testid="reply-reason">{replyReason}</span>}
          </div>
        )}
        {!replying && needsApproval && a.reply && (
          <p className="muted small" data-testid="trainee-help">{t("reply.need_approval")}</p>
        )}
        <TicketApprovals items={approvals.items} onChanged={() => void approvals.reload()} />
        {replying && (
          <ReplyEditor
            ticket={ticket}
            kind={replying.kind}
            fence={replying.fence}
            answering={lastMail?.id}
            lostTo={lost}
            session={session}
            onTyping={isChat ? typing : undefined}
            onClose={async (sent) => {
              setReplying(null);
              setLost("");
              await load();
              await loadSends();
              void approvals.reload();
              if (sent) setNotice("");
            }}
          />
        )}
        <section className="timeline" data-testid="timeline" data-conversation={chat.conversation?.id ?? ""}>
          <ActivityToggle count={activity.entries.length} shown={activity.shown} more={activity.more} toggle={activity.toggle} />
          {merged(ticket.timeline, activity.entries, activity.shown).map((e) => {
            if (e.type === "activity") return <ActivityEntry key={`a-${e.entry.id}`} entry={e.entry} />;
            if (e.type === "comment")
              return (
                <article key={e.comment.id} className="comment" data-testid="comment">
                  <header>
                    <span className="badge">{t("comment.internal")}</span> <strong>{e.comment.author.name}</strong>
                    <span className="spacer" />
                    <span className="muted small">{dateTime(e.comment.created_at)}</span>
                  </header>
                  <p className="pre">{e.comment.body}</p>
                </article>
              );
            if (e.type === "phone_memo")
              return (
                <article key={e.message.id} className="memo" data-testid="memo">
                  <header>
                    <ChannelIcon kind="phone" testId="timeline-channel" />{" "}
                    <strong>{e.message.direction === "outbound" ? t("memo.outbound") : t("memo.inbound")}</strong>{" "}
                    {e.message.caller_name} {e.message.phone}
                    <span className="spacer" />
                    <span className="muted small">{dateTime(e.message.received_at)}</span>
                  </header>
                  <p className="pre">{e.message.body}</p>
                </article>
              );
            if (isChat && (MESSAGE_CHANNELS.has(e.message.channel) || e.message.channel === "sent"))
              return <ChatBubble key={e.message.id} message={e.message} author={senders.get(e.message.message_id ?? "")} />;
            return (
              <MailCard
                key={e.message.id}
                summary={e.message}
                open={e === ticket.timeline[ticket.timeline.length - 1] || e.message.id === lastMail?.id}
                mayDownload={!!a.download_attachments}
              />
            );
          })}
          {chat.live.map((m) => (
            <LiveBubble key={`${m.conversation_id}-${m.seq}-${m.pending ? m.text : ""}`} message={m} />
          ))}
          {isChat && <ChatStatus chat={chat} />}
        </section>
        {isChat && !replying && (
          <ChatComposer
            ticket={ticket}
            session={session}
            blocked={myPending ? replyReason : otherHolder ? t("ticket.reply_disabled", { name: otherHolder }) : ""}
            onSent={(text, approval) => {
              if (approval) setNotice(t("chat.sent_for_approval"));
              else chat.addPending(text);
              void load();
              void loadSends();
              void approvals.reload();
            }}
            onFull={() => void startReply("reply")}
          />
        )}
        <CommentBox ticketId={id} operators={operators} onAdded={() => void load()} say={setNotice} />
        <MemoForm ticketId={id} onAdded={() => void load()} say={setNotice} />
      </main>
      <aside className="ticket-side">
        <CustomerData path={`/tickets/${id}/customer-data`} />
        <TicketSlaPanel ticketId={id} />
        <RoutingFacts ticket={ticket} />
        <label>
          {t("ticket.status")}
          <select
            value={ticket.status}
            disabled={!a.change}
            title={a.change ? "" : t("ticket.no_change")}
            onChange={(e) =>
              void change(
                e.target.value === "resolved" && noSurvey && surveyOn
                  ? { status: e.target.value, without_survey: true }
                  : { status: e.target.value },
              )
            }
            data-testid="status-select"
          >
            {STATUSES.map((s) => (
              <option key={s} value={s}>{t(`status.${s}` as Key)}</option>
            ))}
          </select>
        </label>
        {surveyOn && a.change && ticket.status !== "resolved" && <WithoutSurvey checked={noSurvey} set={setNoSurvey} />}
        <PendingUntil ticket={ticket} change={change} disabled={!a.change} />
        <label>
          {t("ticket.assignee")}
          <select
            value={ticket.assignee?.id ?? ""}
            disabled={!a.change}
            onChange={(e) => void change({ assignee_id: e.target.value || null })}
            data-testid="assignee-select"
          >
            <option value="">{t("ticket.unassigned")}</option>
            {operators.map((o) => (
              <option key={o.id} value={o.id}>{o.display_name}</option>
            ))}
          </select>
          {a.change && ticket.assignee?.id !== session.me.id && (
            <button className="small" onClick={() => void change({ assignee_id: session.me.id })} data-testid="assign-me">
              {t("bulk.assign_me")}
            </button>
          )}
        </label>
        <label>
          {t("ticket.priority")}
          <select value={ticket.priority ?? "normal"} disabled={!a.change} onChange={(e) => void change({ priority: e.target.value })}>
            {PRIORITIES.map((p) => (
              <option key={p} value={p}>{t(`priority.${p}` as Key)}</option>
            ))}
          </select>
        </label>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            if (category !== null) void change({ category }).then(() => setCategory(null));
          }}
        >
          <label>
            {t("ticket.category")}
            <div className="row gap">
              <input
                value={category ?? ticket.category ?? ""}
                disabled={!a.change}
                onChange={(e) => setCategory(e.target.value)}
                size={14}
                data-testid="category-input"
              />
              {category !== null && <button type="submit">{t("ticket.category_set")}</button>}
            </div>
          </label>
        </form>
        <div>
          {t("ticket.labels")}
          <div>
            {ticket.labels.map((l) => (
              <span key={l} className="badge">
                {l}{" "}
                {a.change && (
                  <button className="link" aria-label={`remove ${l}`} onClick={() => void change({ remove_labels: [l] })}>×</button>
                )}
              </span>
            ))}
          </div>
          {a.change && (
            <form
              onSubmit={(e) => {
                e.preventDefault();
                if (label.trim()) void change({ add_labels: [label.trim()] }).then(() => setLabel(""));
              }}
            >
              <input placeholder={t("ticket.add_label")} value={label} onChange={(e) => setLabel(e.target.value)} size={12} />
            </form>
          )}
        </div>
        {a.change && session.inboxes.length > 1 && (
          <details data-testid="transfer">
            <summary>{t("ticket.transfer")}</summary>
            <select value={transfer.inbox} onChange={(e) => setTransfer({ ...transfer, inbox: e.target.value })} data-testid="transfer-inbox">
              <option value="">—</option>
              {session.inboxes
                .filter((i) => i.id !== ticket.inbox.id)
                .map((i) => (
                  <option key={i.id} value={i.id}>{i.name}</option>
                ))}
            </select>
            <textarea rows={2} placeholder={t("ticket.transfer_note")} value={transfer.note} onChange={(e) => setTransfer({ ...transfer, note: e.target.value })} />
            <button disabled={!transfer.inbox} onClick={() => void doTransfer()} data-testid="transfer-do">{t("ticket.transfer_do")}</button>
          </details>
        )}
        <ContactCard ticket={ticket} />
        <TicketSends sends={sends} session={session} reload={() => void loadSends()} say={setNotice} />
      </aside>
    </div>
  );
}
