import { KeyboardEvent, useRef, useState } from "react";
import { api, OperatorBrief } from "./api";
import { errorText } from "./errors";
import { useI18n } from "./i18n";

// What operators add to a ticket besides replies: an internal comment (with @mentions of
// colleagues, picked from a list by keyboard or mouse) and a phone memo (TKT-7).

type Props = { ticketId: string; onAdded: () => void; say: (text: string) => void };

export function CommentBox({ ticketId, operators, onAdded, say }: Props & { operators: OperatorBrief[] }) {
  const { t } = useI18n();
  const [comment, setComment] = useState("");
  const [mention, setMention] = useState<{ query: string; at: number; index: number } | null>(null);
  const commentBox = useRef<HTMLTextAreaElement>(null);

  const addComment = async () => {
    if (!comment.trim()) return;
    try {
      await api.post(`/tickets/${ticketId}/comments`, { body: comment });
      setComment("");
      onAdded();
    } catch (e) {
      say(errorText(e, t));
    }
  };

  const matches = mention
    ? operators
        .filter((o) => (o.login + " " + o.display_name).toLowerCase().includes(mention.query.toLowerCase()))
        .slice(0, 8)
    : [];

  const onComment = (text: string, caret: number) => {
    setComment(text);
    const m = /(^|\s)@([^\s@]*)$/.exec(text.slice(0, caret));
    setMention(m ? { query: m[2], at: caret - m[2].length - 1, index: 0 } : null);
  };

  const pickMention = (o: OperatorBrief) => {
    if (!mention) return;
    const end = mention.at + 1 + mention.query.length;
    const text = `${comment.slice(0, mention.at)}@${o.login} ${comment.slice(end)}`;
    setComment(text);
    setMention(null);
    window.setTimeout(() => commentBox.current?.focus(), 0);
  };

  const onCommentKey = (e: KeyboardEvent) => {
    if (!mention || matches.length === 0) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const step = e.key === "ArrowDown" ? 1 : -1;
      setMention({ ...mention, index: (mention.index + step + matches.length) % matches.length });
    } else if (e.key === "Enter" || e.key === "Tab") {
      e.preventDefault();
      pickMention(matches[mention.index]);
    } else if (e.key === "Escape") {
      setMention(null);
    }
  };

  return (
    <section className="card">
      <textarea
        ref={commentBox}
        placeholder={t("ticket.comment")}
        value={comment}
        onChange={(e) => onComment(e.target.value, e.target.selectionStart)}
        onKeyDown={onCommentKey}
        rows={2}
        data-testid="comment-input"
      />
      {mention && matches.length > 0 && (
        <ul className="mention-list" role="listbox" data-testid="mention-list">
          {matches.map((o, i) => (
            <li
              key={o.id}
              role="option"
              aria-selected={i === mention.index}
              className={i === mention.index ? "active" : ""}
              onMouseDown={(e) => {
                e.preventDefault();
                pickMention(o);
              }}
            >
              {o.display_name} <span className="muted small">@{o.login}</span>
            </li>
          ))}
        </ul>
      )}
      <button onClick={addComment} disabled={!comment.trim()} data-testid="comment-add">{t("ticket.comment_add")}</button>
    </section>
  );
}

export function MemoForm({ ticketId, onAdded, say }: Props) {
  const { t } = useI18n();
  const [memo, setMemo] = useState({ body: "", caller_name: "", phone: "" });

  const addMemo = async () => {
    if (!memo.body.trim()) return;
    try {
      const body: Record<string, string> = { body: memo.body };
      if (memo.caller_name) body.caller_name = memo.caller_name;
      if (memo.phone) body.phone = memo.phone;
      await api.post(`/tickets/${ticketId}/memos`, body);
      setMemo({ body: "", caller_name: "", phone: "" });
      onAdded();
    } catch (e) {
      say(errorText(e, t));
    }
  };

  return (
    <details className="card" data-testid="memo-form">
      <summary>{t("ticket.memo")}</summary>
      <input
        placeholder={t("ticket.memo_caller")}
        aria-label={t("ticket.memo_caller")}
        value={memo.caller_name}
        onChange={(e) => setMemo({ ...memo, caller_name: e.target.value })}
      />
      <input
        placeholder={t("ticket.memo_phone")}
        aria-label={t("ticket.memo_phone")}
        value={memo.phone}
        onChange={(e) => setMemo({ ...memo, phone: e.target.value })}
      />
      <textarea aria-label={t("ticket.memo")} value={memo.body} onChange={(e) => setMemo({ ...memo, body: e.target.value })} rows={3} data-testid="memo-body" />
      <button onClick={addMemo} disabled={!memo.body.trim()} data-testid="memo-add">{t("ticket.memo_add")}</button>
    </details>
  );
}
