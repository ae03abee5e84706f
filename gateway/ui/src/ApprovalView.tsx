import { useCallback, useEffect, useRef, useState } from "react";
import { api, ApiError, Preview } from "./api";
import { Session } from "./App";
import { ApprovalEdit, lockForEdit, releaseEditLock } from "./ApprovalEdit";
import { ApprovalDetail, useApprovalChanges, Verdict } from "./approvalTypes";
import { Dialog } from "./Dialog";
import { DiffView } from "./DiffView";
import { errorText } from "./errors";
import { useFormat } from "./format";
import { Key, useI18n } from "./i18n";
import { MailPreview } from "./MailPreview";
import { Decisions, stageText } from "./TicketApproval";

// One approval request (issue 17, APR-3/4): the mail as it will go out, what changed
// against the author's version, the handover note and every decision; an approver of
// the current stage edits it (under the ticket's reply lock), approves, approves and
// sends at the last stage, or sends it back with a comment (required). A decision that
// came second (409) is told in the operator's words, naming who decided first.

export function ApprovalView({ id, session }: { id: string; session: Session }) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const [detail, setDetail] = useState<ApprovalDetail | null>(null);
  const [preview, setPreview] = useState<Preview | null>(null);
  const [error, setError] = useState("");
  const [notice, setNotice] = useState("");
  const [editing, setEditing] = useState<{ fence: number } | null>(null);
  const [sendingBack, setSendingBack] = useState(false);
  const [comment, setComment] = useState("");
  const [commentError, setCommentError] = useState("");
  const [busy, setBusy] = useState(false);
  const editingRef = useRef(editing);
  editingRef.current = editing;

  const load = useCallback(async (): Promise<ApprovalDetail | null> => {
    try {
      const d = await api.get<ApprovalDetail>(`/approvals/${id}`);
      setDetail(d);
      setError("");
      api.get<Preview>(`/drafts/${d.draft_id}/preview`).then(setPreview, () => setPreview(null));
      return d;
    } catch (e) {
      setError(errorText(e, t));
      return null;
    }
  }, [id, t]);

  useEffect(() => {
    void load();
  }, [load]);
  // someone else decided or the author cancelled: seen at once (not while editing)
  useApprovalChanges(
    useCallback(() => {
      if (!editingRef.current) void load();
    }, [load]),
  );
  // leaving the screen lets the lock go
  useEffect(
    () => () => {
      const e = editingRef.current;
      if (e && detail) releaseEditLock(detail.ticket_id, e.fence);
    },
    [detail],
  );

  const startEdit = async () => {
    if (!detail) return;
    setNotice("");
    try {
      setEditing({ fence: await lockForEdit(detail.ticket_id) });
    } catch (e) {
      setNotice(errorText(e, t));
    }
  };

  const endEdit = async (saved: boolean) => {
    if (detail && editing) releaseEditLock(detail.ticket_id, editing.fence);
    setEditing(null);
    if (saved) {
      setNotice(t("common.saved"));
      await load();
    }
  };

  /** A 409: who decided first (or what the request became), in the operator's words. */
  const conflictText = async (e: ApiError): Promise<string> => {
    const now = await load();
    if (!now || !detail) return errorText(e, t);
    const first = now.decisions.find((d) => d.stage === detail.stage && d.approver.id !== session.me.id);
    if (first)
      return t("appr.decided_by", {
        name: first.approver.name,
        verdict: t(`appr.verdict.${first.verdict}` as Key),
        at: dateTime(first.decided_at),
      });
    if (now.state !== "pending") return t("appr.finished", { state: t(`appr.state.${now.state}` as Key) });
    return errorText(e, t);
  };

  const decide = async (verdict: Verdict) => {
    if (!detail) return;
    if (verdict === "send_back" && !comment.trim()) {
      setCommentError(t("appr.comment_required"));
      return;
    }
    setBusy(true);
    try {
      const body: Record<string, unknown> = { verdict, stage: detail.stage, revision: detail.draft.current.revision };
      if (verdict === "send_back") body.comment = comment.trim();
      await api.post(`/approvals/${detail.id}/decisions`, body);
      setSendingBack(false);
      setComment("");
      setNotice(t(`appr.done.${verdict}` as Key));
      await load();
    } catch (e) {
      const text = e instanceof ApiError && e.status === 409 ? await conflictText(e) : errorText(e, t);
      if (sendingBack && e instanceof ApiError && e.status === 400) setCommentError(text);
      else {
        setSendingBack(false);
        setNotice(text);
      }
    } finally {
      setBusy(false);
    }
  };

  if (error && !detail)
    return (
      <main className="page">
        <a href="#/approvals">← {t("appr.back")}</a>
        <p className="error" role="alert" data-testid="approval-error">{error}</p>
      </main>
    );
  if (!detail) return <main className="page muted">{t("list.loading")}</main>;

  const pending = detail.state === "pending";
  const mayDecide = pending && !!detail.can_decide;
  const last = detail.stage >= detail.stages.length - 1;
  const r = detail.draft.current;
  return (
    <main className="page approval-view" data-testid="approval-view" data-state={detail.state}>
      <div className="row gap wrap approval-bar">
        <a href="#/approvals" data-testid="approval-back">← {t("appr.back")}</a>
        {detail.ticket_id && <a href={`#/tickets/${detail.ticket_id}`}>{t("appr.ticket")}</a>}
        <h1 className="ellipsis">{t("appr.title")}: {detail.subject}</h1>
        <span className="spacer" />
        <span className={`badge appr-${detail.state}`} data-testid="approval-state">{t(`appr.state.${detail.state}` as Key)}</span>
        {pending && <strong data-testid="approval-stage">{stageText(detail, t)}</strong>}
        {detail.late && pending && <span className="badge warn">{t("appr.late")}</span>}
        {mayDecide && !editing && (
          <>
            <button onClick={() => void startEdit()} data-testid="approval-edit-start">{t("appr.edit")}</button>
            <button onClick={() => setSendingBack(true)} disabled={busy} data-testid="send-back">{t("appr.send_back")}</button>
            <button className={last ? "" : "primary"} onClick={() => void decide("approve")} disabled={busy} data-testid="approve">
              {t("appr.approve")}
            </button>
            {last && (
              <button className="primary" onClick={() => void decide("approve_and_send")} disabled={busy} data-testid="approve-send">
                {t("appr.approve_send")}
              </button>
            )}
          </>
        )}
      </div>
      {notice && <p className="notice" role="status" data-testid="approval-notice">{notice}</p>}
      {pending && !detail.can_decide && <p className="muted small">{t("appr.not_yours")}</p>}
      <div className="approval-grid">
        <section className="approval-mail">
          {editing ? (
            <ApprovalEdit draft={detail.draft} ticketId={detail.ticket_id} fence={editing.fence} onDone={(s) => void endEdit(s)} />
          ) : (
            <div className="card" data-testid="approval-mail">
              <h2>{t("appr.mail")}</h2>
              {preview ? (
                <MailPreview preview={preview} date={detail.send_at} scheduled={!!detail.send_at} />
              ) : (
                <>
                  <div className="small">{t("reply.to")}: {r.to.join(", ")}</div>
                  <div className="small">{t("reply.subject")}: {r.subject}</div>
                  <pre className="mailtext" data-testid="preview-text">{r.body_text}</pre>
                </>
              )}
            </div>
          )}
        </section>
        <aside className="approval-side">
          <div className="small">
            <div>
              {t("appr.col.author")}: <strong data-testid="approval-author">{detail.author.name}</strong>
            </div>
            <div className="muted">{t("appr.col.requested_at")}: {dateTime(detail.requested_at)}</div>
            {detail.send_at && <div>{t("appr.send_at", { t: dateTime(detail.send_at) })}</div>}
            {detail.status_after && <div>{t("appr.status_after", { s: t(`status.${detail.status_after}` as Key) })}</div>}
            {detail.without_survey && <div>{t("appr.without_survey")}</div>}
          </div>
          {detail.note && (
            <div className="notice">
              <strong className="small">{t("appr.note")}</strong>
              <p className="pre" data-testid="approval-note-text">{detail.note}</p>
            </div>
          )}
          <h3>{t("appr.changes")}</h3>
          <DiffView fields={detail.diff.fields} testId="approval-diff" />
          <h3>{t("appr.history")}</h3>
          <Decisions round={detail} />
        </aside>
      </div>
      {sendingBack && (
        <Dialog label={t("appr.send_back_title", { name: detail.author.name })} testId="send-back-dialog" onClose={() => setSendingBack(false)}>
          <h2>{t("appr.send_back_title", { name: detail.author.name })}</h2>
          <label>
            {t("appr.comment")}
            <textarea
              rows={4}
              value={comment}
              autoFocus
              onChange={(e) => {
                setComment(e.target.value);
                setCommentError("");
              }}
              aria-invalid={!!commentError}
              data-testid="send-back-comment"
            />
          </label>
          {commentError && <p className="error" role="alert" data-testid="send-back-error">{commentError}</p>}
          <div className="actions">
            <button onClick={() => setSendingBack(false)} data-testid="send-back-cancel">{t("common.cancel")}</button>
            <button className="danger" disabled={busy} onClick={() => void decide("send_back")} data-testid="send-back-confirm">
              {t("appr.send_back")}
            </button>
          </div>
        </Dialog>
      )}
    </main>
  );
}
