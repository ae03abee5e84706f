import { useEffect, useRef, useState } from "react";
import { api, ApiError, Attachment, Draft } from "./api";
import { errorText } from "./errors";
import { useI18n } from "./i18n";
import { RichEditor, RichEditorHandle } from "./RichEditorLazy";

// An approver's changes to the draft awaiting approval (issue 17, APR-3): as for a reply,
// the ticket's reply lock is taken first (fenced) and kept while editing; "Save changes"
// saves a new revision attributed to the approver and lets the lock go.

const RENEW_MS = 20000;
const list = (s: string) =>
  s
    .split(/[,;\n]/)
    .map((x) => x.trim())
    .filter(Boolean);

/** Take the ticket's reply lock for editing: its fence (0 for a mail without a ticket). */
export async function lockForEdit(ticketId: string | null): Promise<number> {
  if (!ticketId) return 0;
  return (await api.post<{ fence: number }>(`/tickets/${ticketId}/lock`)).fence;
}

export function releaseEditLock(ticketId: string | null, fence: number): void {
  if (ticketId && fence) void api.del(`/tickets/${ticketId}/lock`, { fence }).catch(() => {});
}

export function ApprovalEdit({
  draft,
  ticketId,
  fence,
  onDone,
}: {
  draft: Draft;
  ticketId: string | null;
  fence: number;
  onDone: (saved: boolean) => void;
}) {
  const { t } = useI18n();
  const r = draft.current;
  const [to, setTo] = useState(r.to.join(", "));
  const [cc, setCc] = useState(r.cc.join(", "));
  const [subject, setSubject] = useState(r.subject);
  const [body, setBody] = useState({ body_text: r.body_text, body_html: r.body_html });
  const [attachments, setAttachments] = useState<Attachment[]>(r.attachments);
  const [error, setError] = useState("");
  const [saving, setSaving] = useState(false);
  const rich = useRef<RichEditorHandle>(null);
  const textarea = useRef<HTMLTextAreaElement>(null);

  // keep the lock while editing; the view lets it go when editing ends
  useEffect(() => {
    if (!ticketId || !fence) return;
    const id = window.setInterval(() => {
      api.post(`/tickets/${ticketId}/lock/renew`, { fence }).catch((e) => {
        if (e instanceof ApiError && e.status === 409) setError(errorText(e, t));
      });
    }, RENEW_MS);
    return () => window.clearInterval(id);
  }, [ticketId, fence, t]);

  const uploadImage = async (file: File): Promise<Attachment | null> => {
    try {
      const a = await api.post<Attachment>(`/drafts/${draft.id}/attachments`, file, {
        filename: file.name || "image.png",
        inline: true,
        fence: fence || undefined,
      });
      setAttachments((l) => [...l, a]);
      return a;
    } catch (e) {
      setError(errorText(e, t));
      return null;
    }
  };

  const save = async () => {
    setSaving(true);
    try {
      await api.put<Draft>(`/drafts/${draft.id}`, {
        ...(fence ? { fence } : {}),
        base_revision: r.revision,
        from_address: r.from_address,
        from_name: r.from_name,
        to: list(to),
        cc: list(cc),
        bcc: r.bcc,
        subject,
        body_text: body.body_text,
        body_html: body.body_html,
        signature_text: r.signature_text,
        signature_html: r.signature_html ?? "",
        include_quote: r.include_quote,
        attachment_ids: attachments.map((a) => a.id!).filter(Boolean),
      });
      onDone(true);
    } catch (e) {
      setError(errorText(e, t, "reply"));
    } finally {
      setSaving(false);
    }
  };

  return (
    <section className="card editor reply" data-testid="approval-edit">
      <p className="muted small">{t("appr.editing")}</p>
      {error && <p className="error" role="alert" data-testid="approval-edit-error">{error}</p>}
      <div className="fields">
        <label className="inline wide">
          {t("reply.to")} <input value={to} onChange={(e) => setTo(e.target.value)} data-testid="to" />
        </label>
        <label className="inline wide">
          {t("reply.cc")} <input value={cc} onChange={(e) => setCc(e.target.value)} />
        </label>
        <label className="inline wide">
          {t("reply.subject")} <input value={subject} onChange={(e) => setSubject(e.target.value)} data-testid="subject" />
        </label>
      </div>
      <RichEditor
        inboxId={draft.inbox_id}
        text={body.body_text}
        html={body.body_html}
        attachments={attachments}
        onChange={(p) => setBody((b) => ({ ...b, ...p }))}
        onImage={uploadImage}
        handle={rich}
        textareaRef={textarea}
      />
      <div className="row gap sendbar">
        <span className="spacer" />
        <button onClick={() => onDone(false)} data-testid="approval-edit-cancel">{t("appr.edit_cancel")}</button>
        <button className="primary" disabled={saving} onClick={() => void save()} data-testid="approval-edit-save">
          {t("appr.edit_save")}
        </button>
      </div>
    </section>
  );
}
