import { DragEvent, useCallback, useEffect, useRef, useState } from "react";
import { api, ApiError, Attachment, Checks, Draft, DraftRevision, Preview, Send, Template, TicketDetail } from "./api";
import { Session } from "./App";
import { DateTimeInput } from "./DateTimeInput";
import { Approval, draftApprovals } from "./approvalTypes";
import { ChecksDialog } from "./ChecksDialog";
import { Dialog } from "./Dialog";
import { errorText } from "./errors";
import { useFormat } from "./format";
import { useI18n, Key } from "./i18n";
import { AnsweringSplit } from "./Answering";
import { PreviewDialog } from "./MailPreview";
import { TemplatePicker } from "./TemplatePicker";
import { RichEditor, RichEditorHandle } from "./RichEditorLazy";
import { RequestFields, RoundNotice } from "./ReplyApproval";
import { surveyed, WithoutSurvey } from "./adminSurvey";

const RENEW_MS = 20000;
const AUTOSAVE_MS = 1200;

type Fields = Pick<
  DraftRevision,
  "from_address" | "from_name" | "subject" | "body_text" | "body_html" | "signature_text" | "signature_html" | "include_quote"
> & { to: string; cc: string; bcc: string; attachment_ids: string[] };

function fieldsOf(r: DraftRevision): Fields {
  return {
    from_address: r.from_address,
    from_name: r.from_name,
    to: r.to.join(", "),
    cc: r.cc.join(", "),
    bcc: r.bcc.join(", "),
    subject: r.subject,
    body_text: r.body_text,
    body_html: r.body_html,
    signature_text: r.signature_text,
    signature_html: r.signature_html ?? "",
    include_quote: r.include_quote,
    attachment_ids: r.attachments.map((a) => a.id!).filter(Boolean),
  };
}

const list = (s: string) =>
  s
    .split(/[,;\n]/)
    .map((x) => x.trim())
    .filter(Boolean);

/** Release the lock even when the page goes away (keepalive outlives the page). */
export function releaseLock(ticketId: string, fence: number): void {
  void fetch(`/api/v1/tickets/${ticketId}/lock?fence=${fence}`, {
    method: "DELETE",
    keepalive: true,
    credentials: "same-origin",
    headers: { "X-CSRF-Token": localStorage.getItem("sb.csrf") ?? "" },
  }).catch(() => {});
}

export function ReplyEditor({
  ticket,
  kind,
  fence,
  answering,
  lostTo,
  session,
  onClose,
  onTyping,
}: {
  ticket: TicketDetail;
  kind: string;
  fence: number;
  answering?: string;
  lostTo: string;
  session: Session;
  onClose: (sent: boolean) => void;
  onTyping?: (typing: boolean) => void; // a chat ticket: the visitor sees "typing…"
}) {
  const { t, lang } = useI18n();
  const { dateTime } = useFormat();
  const [draft, setDraft] = useState<Draft | null>(null);
  // who changed the draft last: shown when it was someone else (issue 16)
  const [lastChange, setLastChange] = useState<Draft["last_change"]>(null);
  const [fields, setFields] = useState<Fields | null>(null);
  const [revision, setRevision] = useState(0);
  const [dirty, setDirty] = useState(false);
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState("");
  const [lost, setLost] = useState("");
  const [checks, setChecks] = useState<Checks | null>(null);
  const [preview, setPreview] = useState<Preview | null>(null);
  const [discarding, setDiscarding] = useState(false);
  const [statusAfter, setStatusAfter] = useState("");
  const [noSurvey, setNoSurvey] = useState(false); // "resolve without survey" with status_after resolved
  const [later, setLater] = useState(false);
  const [sendAt, setSendAt] = useState("");
  const [attachments, setAttachments] = useState<DraftRevision["attachments"]>([]);
  // approval before send (issue 17): the draft's last round, "request approval", the note
  const [round, setRound] = useState<Approval | undefined>(undefined);
  const [asking, setAsking] = useState(false);
  const [note, setNote] = useState("");
  const body = useRef<HTMLTextAreaElement>(null);
  const rich = useRef<RichEditorHandle>(null);
  const fieldsRef = useRef<Fields | null>(null);
  const revRef = useRef(0);
  fieldsRef.current = fields;
  revRef.current = revision;
  // whether this operator's mail goes out without approval (the ticket's actions say,
  // the approval service decides again when it is sent)
  const mayDirectSend = ticket.actions.send_without_approval ?? session.may("send_without_approval");
  // a final approval of exactly this revision lets its author send it; else, for who
  // needs it or asks for it, the primary button asks for approval (never a disabled Send)
  const approvedNow = round?.state === "approved" && round.revision === revision && !dirty;
  const requesting = (!mayDirectSend || asking) && !approvedNow;
  // "resolve without survey" (OUT-5): where a survey would go; an approval request does not carry it
  const surveyOn = surveyed(session.inboxes, [ticket.inbox.id]);
  const offerNoSurvey = surveyOn && statusAfter === "resolved";
  const lockGone = lost || lostTo;

  // open the draft: the caller's own open one on this ticket, or a new one
  useEffect(() => {
    let cancelled = false;
    (async () => {
      try {
        const mine = (await api.get<{ items: Draft[] }>(`/tickets/${ticket.id}/drafts`)).items.find(
          (d) => d.state === "open" && d.kind === kind && d.author?.id === session.me.id,
        );
        const d =
          mine ??
          (await api.post<Draft>(`/tickets/${ticket.id}/drafts`, {
            kind,
            fence,
            include_quote: true,
            language: lang, // the quote's "… wrote:" in the language the operator is reading
            ...(answering ? { message_id: answering } : {}),
          }));
        if (cancelled) return;
        setDraft(d);
        setLastChange(d.last_change ?? null);
        setFields(fieldsOf(d.current));
        setAttachments(d.current.attachments);
        setRevision(d.current.revision);
        // a draft sent back or approved: its last round is shown above it
        draftApprovals(d.id).then(
          (rounds) => !cancelled && setRound(rounds[0]),
          () => {},
        );
      } catch (e) {
        setError(errorText(e, t, "reply"));
      }
    })();
    return () => {
      cancelled = true;
    };
  }, [ticket.id, kind, fence, answering, session.me.id]);

  // keep the lock while the editor is open; let it go when it closes
  useEffect(() => {
    const id = window.setInterval(async () => {
      try {
        await api.post(`/tickets/${ticket.id}/lock/renew`, { fence });
      } catch (e) {
        if (e instanceof ApiError && e.status === 409) setLost(e.message);
      }
    }, RENEW_MS);
    const unload = () => releaseLock(ticket.id, fence);
    window.addEventListener("pagehide", unload);
    return () => {
      window.clearInterval(id);
      window.removeEventListener("pagehide", unload);
    };
  }, [ticket.id, fence]);

  const save = useCallback(async (): Promise<boolean> => {
    const f = fieldsRef.current;
    if (!f || !draft) return false;
    setSaving(true);
    try {
      const d = await api.put<Draft>(`/drafts/${draft.id}`, {
        fence,
        base_revision: revRef.current,
        from_address: f.from_address,
        from_name: f.from_name,
        to: list(f.to),
        cc: list(f.cc),
        bcc: list(f.bcc),
        subject: f.subject,
        body_text: f.body_text,
        body_html: f.body_html,
        signature_text: f.signature_text,
        signature_html: f.signature_html,
        include_quote: f.include_quote,
        attachment_ids: f.attachment_ids,
      });
      setRevision(d.current.revision);
      // someone else's change stays shown while the editor is open, after the author's saves
      if (d.last_change && d.last_change.by.id !== session.me.id) setLastChange(d.last_change);
      revRef.current = d.current.revision;
      setAttachments(d.current.attachments);
      setDirty(false);
      setError("");
      return true;
    } catch (e) {
      setError(errorText(e, t, "reply"));
      return false;
    } finally {
      setSaving(false);
    }
  }, [draft, fence, session.me.id]);

  // autosave shortly after the last keystroke
  useEffect(() => {
    if (!dirty) return;
    const h = window.setTimeout(() => void save(), AUTOSAVE_MS);
    return () => window.clearTimeout(h);
  }, [dirty, fields, save]);

  const edit = (patch: Partial<Fields>) => {
    setFields((f) => (f ? { ...f, ...patch } : f));
    setDirty(true);
    if (onTyping && ("body_text" in patch || "body_html" in patch)) onTyping(true);
  };

  const insertTemplate = async (tpl: Template) => {
    try {
      const r = await api.post<{ body_text: string; body_html: string; subject: string }>(`/templates/${tpl.id}/render`, {
        ticket_id: ticket.id,
        use: true,
      });
      const f = fieldsRef.current;
      if (!f || rich.current?.insert(r.body_text, r.body_html)) return;
      const ta = body.current;
      const at = ta ? ta.selectionStart : f.body_text.length;
      const text = f.body_text.slice(0, at) + r.body_text + f.body_text.slice(at);
      edit({ body_text: text });
    } catch (e) {
      setError(errorText(e, t, "reply"));
    }
  };

  const upload = async (files: FileList | File[]) => {
    if (!draft) return;
    for (const file of Array.from(files)) {
      try {
        const a = await api.post<{ id: string }>(
          `/drafts/${draft.id}/attachments`,
          file.type ? file : new Blob([file], { type: "application/octet-stream" }),
          { filename: file.name, fence },
        );
        const f = fieldsRef.current;
        if (f) edit({ attachment_ids: [...f.attachment_ids, a.id] });
      } catch (e) {
        setError(errorText(e, t, "reply"));
      }
    }
  };

  // an image pasted or dropped into the HTML body: an inline attachment (cid:)
  const uploadImage = async (file: File): Promise<Attachment | null> => {
    if (!draft) return null;
    try {
      const a = await api.post<Attachment>(`/drafts/${draft.id}/attachments`, file, {
        filename: file.name || "image.png",
        inline: true,
        fence,
      });
      setAttachments((l) => [...l, a]);
      const f = fieldsRef.current;
      if (f) edit({ attachment_ids: [...f.attachment_ids, a.id!] });
      return a;
    } catch (e) {
      setError(errorText(e, t));
      return null;
    }
  };

  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    if (e.dataTransfer.files.length) void upload(e.dataTransfer.files);
  };

  const doSend = async (acknowledged: string[]) => {
    if (!draft) return;
    try {
      const req: Record<string, unknown> = { fence, acknowledged_warnings: acknowledged };
      if (statusAfter) req.status_after = statusAfter;
      if (statusAfter === "resolved" && noSurvey && surveyOn) req.without_survey = true;
      if (later && sendAt) req.send_at = sendAt;
      await api.post<Send>(`/drafts/${draft.id}/send`, req);
      setChecks(null);
      onClose(true);
    } catch (e) {
      setChecks(null);
      setError(errorText(e, t, "reply"));
    }
  };

  const send = async () => {
    if (!draft || lockGone) return;
    if (requesting) return void requestApproval(); // Ctrl+Enter too: what the button does
    if (dirty && !(await save())) return;
    try {
      const c = await api.get<Checks>(`/drafts/${draft.id}/checks`);
      if (c.findings.length > 0) setChecks(c);
      else await doSend([]);
    } catch (e) {
      setError(errorText(e, t, "reply"));
    }
  };

  // asking for approval instead of sending: the draft, the note and the send-time choice
  // go to the approvers; the server frees the reply lock and freezes the draft
  const requestApproval = async () => {
    if (!draft || lockGone) return;
    if (dirty && !(await save())) return;
    try {
      const req: Record<string, unknown> = {};
      if (note.trim()) req.note = note.trim();
      if (statusAfter) req.status_after = statusAfter;
      if (statusAfter === "resolved" && noSurvey && surveyOn) req.without_survey = true;
      if (later && sendAt) req.send_at = sendAt;
      await api.post<Approval>(`/drafts/${draft.id}/approval`, req);
      onClose(true);
    } catch (e) {
      setError(errorText(e, t, "reply"));
    }
  };

  const showPreview = async () => {
    if (!draft) return;
    if (dirty) await save();
    try {
      setPreview(await api.get<Preview>(`/drafts/${draft.id}/preview`));
    } catch (e) {
      setError(errorText(e, t, "reply"));
    }
  };

  const close = async () => {
    if (dirty) await save();
    releaseLock(ticket.id, fence);
    onClose(false);
  };

  const discard = async () => {
    setDiscarding(false);
    if (draft) {
      try {
        await api.del(`/drafts/${draft.id}`, { fence });
      } catch {
        /* already gone */
      }
    }
    releaseLock(ticket.id, fence);
    onClose(false);
  };

  const onKey = (e: React.KeyboardEvent) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      void send();
    } else if (e.key === "Escape" && !checks && !preview && !discarding) {
      e.preventDefault();
      void close();
    }
  };

  if (!fields)
    return (
      <section className="editor card" data-testid="editor">
        {error ? <p className="error" role="alert">{error}</p> : <p className="muted">{t("list.loading")}</p>}
        <button onClick={() => void close()}>{t("reply.close")}</button>
      </section>
    );

  const sendBlocked = !!lockGone;
  const answered = answering ? ticket.messages.find((m) => m.id === answering) : undefined;
  const forwarding = kind === "forward";
  // a scheduled mail is dated when it goes out: the preview shows that time
  const previewDate = later && sendAt ? sendAt : preview?.date;
  return (
    <section className="editor card reply" data-testid="editor" onKeyDown={onKey} onDragOver={(e) => e.preventDefault()} onDrop={onDrop}>
      <div className="row gap">
        <h2>{t(forwarding ? "ticket.forward" : kind === "reply_all" ? "ticket.reply_all" : "reply.title")}</h2>
        <span className="muted small" data-testid="reply-from">
          {t("reply.from")}: {fields.from_name ? `${fields.from_name} <${fields.from_address}>` : fields.from_address}
        </span>
        <span className="spacer" />
        <span className="muted small" data-testid="save-state">{saving ? t("reply.saving") : dirty ? "" : t("reply.saved")}</span>
      </div>
      {lastChange && lastChange.by.id !== session.me.id && (
        <p className="notice" role="status" data-testid="draft-changed-by">
          {t(lastChange.action === "reopened" ? "reply.reopened_by" : "reply.changed_by", {
            name: lastChange.by.name || "?",
            at: dateTime(lastChange.at),
          })}
        </p>
      )}
      <RoundNotice round={round} revision={revision} />
      {lockGone && <p className="error" role="alert" data-testid="lock-lost">{t("reply.lock_lost", { name: lostTo || "?" })}</p>}
      {error && <p className="error" role="alert" data-testid="editor-error">{error}</p>}
      <AnsweringSplit answered={answered} forwarding={forwarding} mayDownload={!!ticket.actions.download_attachments}>
        <div className="editor-grid">
          <div>
            <div className="fields">
              <label className="inline wide">
                {t("reply.to")} <input value={fields.to} onChange={(e) => edit({ to: e.target.value })} data-testid="to" />
              </label>
              <label className="inline">
                {t("reply.cc")} <input value={fields.cc} onChange={(e) => edit({ cc: e.target.value })} />
              </label>
              <label className="inline">
                {t("reply.bcc")} <input value={fields.bcc} onChange={(e) => edit({ bcc: e.target.value })} />
              </label>
              <label className="inline wide">
                {t("reply.subject")} <input value={fields.subject} onChange={(e) => edit({ subject: e.target.value })} data-testid="subject" />
              </label>
            </div>
            <RichEditor
              inboxId={ticket.inbox.id}
              text={fields.body_text}
              html={fields.body_html}
              attachments={attachments}
              onChange={edit}
              onImage={uploadImage}
              handle={rich}
              textareaRef={body}
            />
            <div className="row gap wrap">
              <label className="check">
                <input type="checkbox" checked={fields.include_quote} onChange={(e) => edit({ include_quote: e.target.checked })} /> {t("reply.quote")}
              </label>
              <div className="attach">
                <label className="link">
                  + {t("reply.attach")}
                  <input type="file" multiple hidden onChange={(e) => e.target.files && void upload(e.target.files)} data-testid="attach-input" />
                </label>
                <ul>
                  {attachments.map((a) => (
                    <li key={a.id}>{a.filename} <span className="muted small">({Math.ceil(a.size / 1024)} KB)</span></li>
                  ))}
                </ul>
              </div>
            </div>
            <details className="signature">
              <summary>{t("reply.signature")}</summary>
              <textarea rows={3} aria-label={t("reply.signature")} value={fields.signature_text} onChange={(e) => edit({ signature_text: e.target.value, signature_html: "" })} />
            </details>
          </div>
          <TemplatePicker ticket={ticket} mayManage={session.may("manage_templates")} onInsert={(tpl) => void insertTemplate(tpl)} />
        </div>
      </AnsweringSplit>
      <div className="row gap wrap sendbar">
        <label>
          {t("reply.send_status")}{" "}
          <select value={statusAfter} onChange={(e) => setStatusAfter(e.target.value)} data-testid="status-after">
            <option value="">{t("reply.keep_status")}</option>
            {(["pending", "resolved", "no_action"] as const).map((s) => (
              <option key={s} value={s}>{t(`status.${s}` as Key)}</option>
            ))}
          </select>
        </label>
        {offerNoSurvey && <WithoutSurvey checked={noSurvey} set={setNoSurvey} />}
        <label className="check">
          <input type="checkbox" checked={later} onChange={(e) => setLater(e.target.checked)} data-testid="later" /> {t("reply.schedule")}
        </label>
        {later && (
          <DateTimeInput value={sendAt} onChange={setSendAt} label={t("reply.schedule_at")} testId="send-at" />
        )}
        <RequestFields needed={!mayDirectSend && !approvedNow} asking={asking} setAsking={setAsking} note={note} setNote={setNote} />
        <span className="spacer" />
        <button onClick={() => void showPreview()} data-testid="preview">{t("reply.preview")}</button>
        <button onClick={() => setDiscarding(true)} data-testid="discard">{t("reply.discard")}</button>
        <button onClick={() => void close()} data-testid="close-editor">{t("reply.close")}</button>
        <button
          className="primary"
          disabled={sendBlocked || (later && !sendAt)}
          title={requesting ? t("appr.request_hint") : ""}
          onClick={() => void send()}
          data-testid={requesting ? "request" : "send"}
        >
          {requesting ? t("appr.request") : later ? t("reply.schedule_do") : t("reply.send")}
        </button>
      </div>
      {!mayDirectSend && !approvedNow && <p className="muted small" data-testid="send-reason">{t("reply.need_approval")}</p>}
      {checks && (
        <ChecksDialog
          checks={checks}
          later={later}
          onCancel={() => setChecks(null)}
          onConfirm={(codes) => void doSend(codes)}
        />
      )}
      {preview && (
        <PreviewDialog preview={preview} date={previewDate} scheduled={later && !!sendAt} onClose={() => setPreview(null)} />
      )}
      {discarding && (
        <Dialog label={t("reply.discard_title")} testId="discard-dialog" onClose={() => setDiscarding(false)}>
          <h2>{t("reply.discard_title")}</h2>
          <p>{t("reply.discard_text")}</p>
          <div className="actions">
            <button onClick={() => setDiscarding(false)} autoFocus data-testid="discard-cancel">{t("common.cancel")}</button>
            <button className="danger" onClick={() => void discard()} data-testid="discard-confirm">{t("reply.discard_do")}</button>
          </div>
        </Dialog>
      )}
    </section>
  );
}
