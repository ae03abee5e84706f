// A channel ticket's conversation in the ticket view (issue 21): its messages as chat
// bubbles — those of the timeline, and those the live socket pushes at once
// (`channel.message`, before the ticket has them; dropped when the timeline re-reads
// with them) — the visitor's typing and presence, and the LINE reply window.
import { useCallback, useEffect, useRef, useState } from "react";
import { api, ApiError, MessageSummary } from "./api";
import { ChannelIcon, Conversation, messageChannel } from "./channels";
import { useFormat } from "./format";
import { useI18n } from "./i18n";
import { live, LiveEvent } from "./live";

const TYPING_SHOWN_MS = 10000; // a visitor's "typing" without a stop fades after this
const FULL_AFTER = 190; // a snippet this long may be cut: the bubble reads the whole text

export interface LiveMessage {
  conversation_id: string;
  ticket_id: string | null;
  seq: number;
  direction: "in" | "out";
  text: string;
  author_name: string;
  sender_name: string;
  created_at: string | null;
  message_id: string | null;
  pending?: boolean; // the operator's own, sent a moment ago, not yet delivered
}

export interface ChatState {
  conversation: Conversation | null;
  live: LiveMessage[];
  typing: boolean;
  online: boolean | null;
  addPending: (text: string) => void;
}

const norm = (s: string | undefined) => (s ?? "").replace(/\s+/g, " ").trim();

/** The conversation of a ticket and what the live socket says of it. `timeline` is the
 * ticket's messages: a live message they already hold is dropped. Its conversation is read
 * only when `enabled` (the ticket's customer is a channel's). */
export function useChat(ticketId: string, timeline: MessageSummary[], enabled: boolean): ChatState {
  const [conversation, setConversation] = useState<Conversation | null>(null);
  const [pushed, setPushed] = useState<LiveMessage[]>([]);
  const [typing, setTyping] = useState(false);
  const [online, setOnline] = useState<boolean | null>(null);
  const typingTimer = useRef<number | undefined>(undefined);
  const convRef = useRef<Conversation | null>(null);
  convRef.current = conversation;

  const load = useCallback(async () => {
    if (!enabled) return;
    try {
      setConversation(await api.get<Conversation>(`/tickets/${ticketId}/conversation`));
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) setConversation(null);
    }
  }, [ticketId, enabled]);

  useEffect(() => {
    setPushed([]);
    setTyping(false);
    setOnline(null);
    void load();
  }, [load]);

  useEffect(() => {
    const ours = (e: LiveEvent) =>
      e.ticket_id === ticketId || (!!convRef.current && e.conversation_id === convRef.current.id);
    const off = live.on((e: LiveEvent) => {
      if (e.type === "channel.message" && ours(e)) {
        const m = e as unknown as LiveMessage;
        setPushed((l) => {
          if (l.some((x) => !x.pending && x.conversation_id === m.conversation_id && x.seq === m.seq)) return l;
          // the operator's own pending bubble becomes the delivered message
          const i = m.direction === "out" ? l.findIndex((x) => x.pending && norm(x.text) === norm(m.text)) : -1;
          const rest = i >= 0 ? l.filter((_, n) => n !== i) : l;
          return [...rest, m].sort((a, b) => (a.pending ? 1 : 0) - (b.pending ? 1 : 0) || a.seq - b.seq);
        });
        if (m.direction === "in") {
          setTyping(false);
          void load(); // the customer wrote: a reply window starts again
        }
      } else if (e.type === "chat.typing" && e.who === "visitor" && ours(e)) {
        window.clearTimeout(typingTimer.current);
        setTyping(!!e.typing);
        if (e.typing) typingTimer.current = window.setTimeout(() => setTyping(false), TYPING_SHOWN_MS);
      } else if (e.type === "chat.visitor" && ours(e)) {
        setOnline(!!e.online);
      } else if (e.type === "channel.conversation" && ours(e)) {
        if (e.action === "online" || e.action === "offline") setOnline(e.action === "online");
        void load();
      }
    });
    const offState = live.onState((up) => up && void load());
    return () => {
      off();
      offState();
      window.clearTimeout(typingTimer.current);
    };
  }, [ticketId, load]);

  // what the timeline holds now: customers' messages by id, replies by their text
  const inIds = new Set(timeline.map((m) => m.id));
  const sentTexts = timeline.filter((m) => m.channel === "sent").map((m) => norm(m.snippet));
  const shown = pushed.filter((m) =>
    m.direction === "in"
      ? !(m.message_id && inIds.has(m.message_id))
      : !sentTexts.some((s) => s && (s === norm(m.text) || norm(m.text).startsWith(s))),
  );
  const addPending = useCallback(
    (text: string) =>
      setPushed((l) => [
        ...l,
        {
          conversation_id: convRef.current?.id ?? "",
          ticket_id: ticketId,
          seq: Number.MAX_SAFE_INTEGER,
          direction: "out",
          text,
          author_name: "",
          sender_name: "",
          created_at: new Date().toISOString(),
          message_id: null,
          pending: true,
        },
      ]),
    [ticketId],
  );
  return { conversation, live: shown, typing, online, addPending };
}

/** A timeline message of a channel ticket as a bubble: the customer's on the left, replies
 * on the right; the whole text is read when the snippet may be cut. */
export function ChatBubble({ message, author }: { message: MessageSummary; author?: string }) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const [text, setText] = useState(message.snippet ?? "");
  const out = message.channel === "sent";
  useEffect(() => {
    if ((message.snippet ?? "").length < FULL_AFTER) return;
    api
      .get<{ parsed: { text?: string } | null }>(`/messages/${message.id}`)
      .then((m) => m.parsed?.text && setText(m.parsed.text.trim()))
      .catch(() => {});
  }, [message.id, message.snippet]);
  // a reply names the operator who sent it (from the ticket's sends), else the inbox
  const who = out ? author || message.author?.name || message.from?.name || "" : message.from?.name || t("chat.visitor");
  return (
    <Bubble out={out} who={who} at={dateTime(message.received_at)} text={text} channel={messageChannel(message)} testId="chat-bubble" id={message.id} />
  );
}

export function LiveBubble({ message }: { message: LiveMessage }) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const out = message.direction === "out";
  const who = out ? message.author_name || t("chat.you") : message.sender_name || t("chat.visitor");
  return (
    <Bubble
      out={out}
      who={who}
      at={message.pending ? t("chat.pending") : dateTime(message.created_at)}
      text={message.text}
      testId={message.pending ? "chat-bubble-pending" : "chat-bubble-live"}
      id={message.message_id ?? `seq-${message.seq}`}
    />
  );
}

function Bubble({
  out,
  who,
  at,
  text,
  channel,
  testId,
  id,
}: {
  out: boolean;
  who: string;
  at: string;
  text: string;
  channel?: ReturnType<typeof messageChannel>;
  testId: string;
  id: string;
}) {
  return (
    <article className={`bubble ${out ? "out" : "in"}`} data-testid={testId} data-direction={out ? "out" : "in"} data-id={id}>
      <header className="muted small">
        {channel && !out && <ChannelIcon kind={channel} testId="timeline-channel" />} <strong>{who}</strong> · {at}
      </header>
      <p className="pre">{text}</p>
    </article>
  );
}

/** The visitor's typing and presence, under the conversation. */
export function ChatStatus({ chat }: { chat: ChatState }) {
  const { t } = useI18n();
  const name = chat.conversation?.sender_name || t("chat.visitor");
  return (
    <div className="chat-status" aria-live="polite">
      {chat.typing && (
        <span className="typing" data-testid="visitor-typing">
          {t("chat.typing", { name })}
        </span>
      )}
      {chat.conversation?.ended_at ? (
        <span className="muted small" data-testid="chat-ended">{t("chat.ended")}</span>
      ) : (
        chat.online !== null && (
          <span className="muted small" data-testid="visitor-presence">{t(chat.online ? "chat.online" : "chat.offline")}</span>
        )
      )}
    </div>
  );
}

/** A channel's reply window (LINE: replies only so long after the customer's last
 * message), open or closed. */
export function ReplyWindow({ conversation }: { conversation: Conversation | null }) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const [now, setNow] = useState(() => Date.now());
  const ends = conversation?.reply_window_ends_at;
  // shown closed the moment it closes
  useEffect(() => {
    const left = ends ? Date.parse(ends) - Date.now() : -1;
    setNow(Date.now());
    if (left < 0) return;
    const h = window.setTimeout(() => setNow(Date.now()), Math.min(left + 200, 2 ** 31 - 1));
    return () => window.clearTimeout(h);
  }, [ends]);
  if (!ends) return null;
  const open = Date.parse(ends) > now;
  return (
    <p className={open ? "notice" : "error"} role="status" data-testid="reply-window" data-open={open}>
      {t(open ? "chat.window_open" : "chat.window_closed", { at: dateTime(ends) })}
    </p>
  );
}
