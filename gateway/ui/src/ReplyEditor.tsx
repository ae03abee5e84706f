import { DragEvent, useCallback, useEffect, useRef, useState } from "react";
import { api, ApiError, Attachment, Checks, Draft, DraftRevision, Preview, Send, Template, TicketDetail } from "./api";
import { Session } from "./App";
import { DateTimeInput } from "./DateTimeInput";
import { Dialog } from "./Dialog";
import { errorText } from "./errors";
import { useFormat } from "./format";
import { useI18n, Key } from "./i18n";
import { MailCard, MailFrame } from "./MailView";
import { TemplatePicker } from "./TemplatePicker";
import { RichEditor, RichEditorHandle } from "./RichEditor";

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

const ANSWERING_KEY = "sb.reply.answering"; // "hidden": the answered mail folded away

function answeringShown(): boolean {
  try {
    return localStorage.getItem(ANSWERING_KEY) !== "hidden";
  } catch {
    return true;
  }
}

/** The draft's own images inside its HTML (cid:), shown from its attachments. */
function inlineOf(p: Preview): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of p.attachments) if (a.inline && a.content_id) out[a.content_id] = a.download_url;
  return out;
}

const addressText = (a: { name: string; address: string }) => (a.name ? `${a.name} <${a.address}>` : a.address);

/** Release the lock even when the page goes away (keepalive outlives the page). */
function releaseLock(ticketId: string, fence: number): void {
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
}: {
  ticket: TicketDetail;
  kind: string;
  fence: number;
  answering?: string;
  lostTo: string;
  session: Session;
  onClose: (sent: boolean) => void;
}) {
  const { t, lang } = useI18n();
  const { dateTime, zone } = useFormat();
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
  const [source, setSource] = useState(false);
  const [discarding, setDiscarding] = useState(false);
  const [showAnswered, setShowAnswered] = useState(answeringShown);
  const [statusAfter, setStatusAfter] = useState("");
  const [later, setLater] = useState(false);
  const [sendAt, setSendAt] = useState("");
  const [attachments, setAttachments] = useState<DraftRevision["attachments"]>([]);
  const body = useRef<HTMLTextAreaElement>(null);
  const rich = useRef<RichEditorHandle>(null);
  const fieldsRef = useRef<Fields | null>(null);
  const revRef = useRef(0);
  fieldsRef.current = fields;
  revRef.current = revision;
  const mayDirectSend = session.may("send_without_approval");
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
    if (!draft || lockGone || !mayDirectSend) return; // Ctrl+Enter too: what the button may not
    if (dirty && !(await save())) return;
    try {
      const c = await api.get<Checks>(`/drafts/${draft.id}/checks`);
      if (c.findings.length > 0) setChecks(c);
      else await doSend([]);
    } catch (e) {
      setError(errorText(e, t, "reply"));
    }
  };

  const showPreview = async () => {
    if (!draft) return;
    if (dirty) await save();
    try {
      setSource(false);
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

  const toggleAnswered = () => {
    const next = !showAnswered;
    setShowAnswered(next);
    try {
      localStorage.setItem(ANSWERING_KEY, next ? "shown" : "hidden");
    } catch {
      /* this time only */
    }
  };

  const sendBlocked = !!lockGone || !mayDirectSend;
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
      {lockGone && <p className="error" role="alert" data-testid="lock-lost">{t("reply.lock_lost", { name: lostTo || "?" })}</p>}
      {error && <p className="error" role="alert" data-testid="editor-error">{error}</p>}
      {/* the mail being answered beside the editor (issue 16, UI item 3), folded to a line on request */}
      <div className={answered && showAnswered ? "reply-split" : "reply-split folded"}>
        {answered && (
          <aside className="answering" aria-label={t(forwarding ? "reply.forwarding" : "reply.answering")} data-testid="answering">
            <div className="row gap">
              <strong className="small">{t(forwarding ? "reply.forwarding" : "reply.answering")}</strong>
              {!showAnswered && (
                <span className="muted small ellipsis">
                  {answered.from?.name || answered.from?.address} — {answered.subject}
                </span>
              )}
              <span className="spacer" />
              <button className="link small" onClick={toggleAnswered} aria-expanded={showAnswered} data-testid="answering-toggle">
                {showAnswered ? t("reply.answering_hide") : t("reply.answering_show")}
              </button>
            </div>
            {showAnswered && (
              <div className="answering-mail">
                <MailCard summary={answered} open mayDownload={!!ticket.actions.download_attachments} />
              </div>
            )}
          </aside>
        )}
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
      </div>
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
        <label className="check">
          <input type="checkbox" checked={later} onChange={(e) => setLater(e.target.checked)} data-testid="later" /> {t("reply.schedule")}
        </label>
        {later && (
          <DateTimeInput value={sendAt} onChange={setSendAt} label={t("reply.schedule_at")} testId="send-at" />
        )}
        <span className="spacer" />
        <button onClick={() => void showPreview()} data-testid="preview">{t("reply.preview")}</button>
        <button onClick={() => setDiscarding(true)} data-testid="discard">{t("reply.discard")}</button>
        <button onClick={() => void close()} data-testid="close-editor">{t("reply.close")}</button>
        <button
          className="primary"
          disabled={sendBlocked || (later && !sendAt)}
          title={!mayDirectSend ? t("reply.need_approval") : ""}
          onClick={() => void send()}
          data-testid="send"
        >
          {later ? t("reply.schedule_do") : t("reply.send")}
        </button>
      </div>
      {!mayDirectSend && <p className="muted small" data-testid="send-reason">{t("reply.need_approval")}</p>}
      {checks && (
        <Dialog label={t("checks.title")} testId="checks-dialog" onClose={() => setChecks(null)}>
          <h2>{t("checks.title")}</h2>
          {checks.blocked && (
            <>
              <p>{t("checks.blocking")}</p>
              <ul>
                {checks.findings.filter((f) => f.severity === "blocking").map((f, i) => (
                  <li key={i} className="error" data-code={f.code}>{f.message}</li>
                ))}
              </ul>
            </>
          )}
          {checks.findings.some((f) => f.severity === "warning") && (
            <>
              <p>{t("checks.warnings")}</p>
              <ul>
                {checks.findings.filter((f) => f.severity === "warning").map((f, i) => (
                  <li key={i} data-code={f.code} data-testid="check-warning">{f.message}</li>
                ))}
              </ul>
            </>
          )}
          <div className="actions">
            <button onClick={() => setChecks(null)} data-testid="checks-cancel">{t("checks.cancel")}</button>
            {!checks.blocked && (
              <button
                className="primary"
                onClick={() => void doSend(checks.findings.map((f) => f.code))}
                data-testid="checks-confirm"
              >
                {later ? t("checks.confirm_schedule") : t("checks.confirm")}
              </button>
            )}
          </div>
        </Dialog>
      )}
      {preview && (
        <Dialog wide label={t("preview.title")} testId="preview-dialog" onClose={() => setPreview(null)}>
          <h2>{t("preview.title")}</h2>
          <table className="headers" data-testid="preview-fields">
            <tbody>
              <tr>
                <th>{t("reply.from")}</th>
                <td data-testid="preview-from">{addressText(preview.from)}</td>
              </tr>
              <tr>
                <th>{t("reply.to")}</th>
                <td data-testid="preview-to">{preview.to.map(addressText).join(", ")}</td>
              </tr>
              {preview.cc.length > 0 && (
                <tr>
                  <th>{t("reply.cc")}</th>
                  <td data-testid="preview-cc">{preview.cc.map(addressText).join(", ")}</td>
                </tr>
              )}
              {preview.bcc.length > 0 && (
                <tr>
                  <th>{t("reply.bcc")}</th>
                  <td>
                    {preview.bcc.join(", ")} <span className="muted small">{t("preview.bcc_hidden")}</span>
                  </td>
                </tr>
              )}
              <tr>
                <th>{t("reply.subject")}</th>
                <td data-testid="preview-subject">{preview.subject}</td>
              </tr>
              <tr>
                <th>{t("preview.date")}</th>
                <td data-testid="preview-date">
                  {dateTime(previewDate)} <span className="muted small">{zone()}</span>{" "}
                  {!(later && sendAt) && <span className="muted small">{t("preview.date_now")}</span>}
                </td>
              </tr>
            </tbody>
          </table>
          {preview.html ? (
            <MailFrame html={preview.html} images inline={inlineOf(preview)} />
          ) : (
            <pre className="mailtext" data-testid="preview-text">{preview.text}</pre>
          )}
          {preview.attachments.some((a) => !a.inline) && (
            <div className="attachments" data-testid="preview-attachments">
              <strong>{t("mail.attachments")}</strong>
              <ul>
                {preview.attachments.filter((a) => !a.inline).map((a) => (
                  <li key={a.download_url}>
                    {a.filename} <span className="muted small">({Math.ceil(a.size / 1024)} KB)</span>
                  </li>
                ))}
              </ul>
            </div>
          )}
          {source && preview.source !== null && (
            <>
              <pre className="mailtext source" data-testid="preview-source">{preview.source}</pre>
              {preview.source_truncated && <p className="muted small">{t("preview.source_truncated")}</p>}
            </>
          )}
          <div className="actions">
            <button
              onClick={() => setSource(!source)}
              disabled={preview.source === null}
              title={preview.source === null ? t("preview.source_masked") : ""}
              aria-expanded={source}
              data-testid="preview-show-source"
            >
              {source ? t("preview.hide_source") : t("preview.show_source")}
            </button>
            <span className="spacer" />
            <button onClick={() => setPreview(null)} autoFocus data-testid="preview-close">{t("common.close")}</button>
          </div>
        </Dialog>
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
