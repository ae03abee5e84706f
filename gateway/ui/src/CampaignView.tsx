// A campaign's page (issue 20, OUT-6): its totals and progress — read again every few
// seconds while it is scheduled or running —, its recipients by state, and the buttons a
// state allows: Pause while running, Resume while paused, Cancel (asked
// first) before it ends; a draft is edited, sent now or deleted.
import { useCallback, useEffect, useRef, useState } from "react";
import { api } from "./api";
import { go, Session } from "./App";
import { Dialog } from "./Dialog";
import { errorText } from "./errors";
import { useFormat } from "./format";
import { useI18n } from "./i18n";
import { Campaign, CampaignState, done, Recipient, RECIPIENT_STATES, TOTALS } from "./outreachTypes";

const REFRESH_MS = 2000;

// what the buttons do (each a documented route of its own)
const ACTIONS = {
  pause: (id: string) => api.post<Campaign>(`/campaigns/${id}/pause`),
  resume: (id: string) => api.post<Campaign>(`/campaigns/${id}/resume`),
  cancel: (id: string) => api.post<Campaign>(`/campaigns/${id}/cancel`),
  schedule: (id: string) => api.post<Campaign>(`/campaigns/${id}/schedule`, { scheduled_at: new Date().toISOString() }),
};

export function Progress({ c }: { c: Campaign }) {
  const { t } = useI18n();
  const n = done(c.totals);
  const all = c.totals.recipients;
  return (
    <span className="row gap" data-testid="camp-progress">
      <progress max={Math.max(all, 1)} value={all ? n : 0} aria-label={t("camp.progress")} />
      <span>{t("camp.progress_n", { n, all })}</span>
    </span>
  );
}

export function StateBadge({ state }: { state: CampaignState }) {
  const { t } = useI18n();
  const cls = state === "completed" ? "badge ok" : state === "running" ? "badge lock" : state === "cancelled" ? "badge warn" : "badge";
  return <span className={cls} data-testid="camp-state">{t(`camp.state.${state}`)}</span>;
}


export function CampaignView({ id, session }: { id: string; session: Session }) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const [c, setC] = useState<Campaign | null>(null);
  const [recipients, setRecipients] = useState<Recipient[]>([]);
  const [next, setNext] = useState("");
  const [filter, setFilter] = useState("");
  const [notice, setNotice] = useState("");
  const [asking, setAsking] = useState<"cancel" | "delete" | null>(null);
  const [busy, setBusy] = useState(false);
  const paged = useRef(false); // more than the first page of recipients is shown

  const load = useCallback(
    async (cursor = "") => {
      try {
        if (!cursor) setC(await api.get<Campaign>(`/campaigns/${id}`));
        const r = await api.get<{ recipients: Recipient[]; next_cursor: string }>(`/campaigns/${id}/recipients`, {
          state: filter,
          cursor,
          limit: 100,
        });
        setRecipients((old) => (cursor ? [...old, ...r.recipients] : r.recipients));
        setNext(r.next_cursor);
        paged.current = !!cursor;
      } catch (e) {
        setNotice(errorText(e, t));
      }
    },
    [id, filter, t],
  );
  useEffect(() => {
    void load();
  }, [load]);

  const moving = c?.state === "running" || c?.state === "scheduled";
  useEffect(() => {
    if (!moving) return;
    // the totals each time; the recipients too unless more pages were read (kept as read)
    const h = window.setInterval(() => {
      if (!paged.current) void load();
      else void api.get<Campaign>(`/campaigns/${id}`).then(setC).catch(() => {});
    }, REFRESH_MS);
    return () => window.clearInterval(h);
  }, [moving, load, id]);

  const act = async (action: keyof typeof ACTIONS) => {
    setAsking(null);
    setBusy(true);
    try {
      setC(await ACTIONS[action](id));
      setNotice(t(`camp.done.${action}`));
      await load();
    } catch (e) {
      setNotice(errorText(e, t));
    } finally {
      setBusy(false);
    }
  };

  const remove = async () => {
    setAsking(null);
    try {
      await api.del(`/campaigns/${id}`);
      go("/campaigns");
    } catch (e) {
      setNotice(errorText(e, t));
    }
  };

  if (!c) return <main className="page muted">{notice || t("list.loading")}</main>;
  const inbox = session.inboxes.find((i) => i.id === c.inbox_id)?.name ?? "";
  const open = c.state !== "completed" && c.state !== "cancelled";
  return (
    <main className="page" data-testid="campaign">
      <div className="row gap">
        <a href="#/campaigns">← {t("nav.campaigns")}</a>
        <h1 data-testid="camp-title">{c.name}</h1>
        <StateBadge state={c.state} />
        <span className="spacer" />
        {c.state === "draft" && (
          <>
            <button onClick={() => go(`/campaigns/${id}/edit`)} data-testid="camp-edit">{t("admin.edit")}</button>
            <button className="primary" disabled={busy} onClick={() => void act("schedule")} data-testid="camp-send-now">{t("camp.send_now")}</button>
            <button className="danger" onClick={() => setAsking("delete")} data-testid="camp-delete">{t("admin.delete")}</button>
          </>
        )}
        {c.state === "scheduled" && <button onClick={() => go(`/campaigns/${id}/edit`)} data-testid="camp-edit">{t("admin.edit")}</button>}
        <button disabled={busy || c.state !== "running"} onClick={() => void act("pause")} data-testid="camp-pause">{t("camp.pause")}</button>
        <button disabled={busy || c.state !== "paused"} onClick={() => void act("resume")} data-testid="camp-resume">{t("camp.resume")}</button>
        <button className="danger" disabled={busy || !open} onClick={() => setAsking("cancel")} data-testid="camp-cancel">
          {t("camp.cancel")}
        </button>
      </div>
      {notice && <p className="notice" role="status" data-testid="camp-notice">{notice}</p>}
      <p className="muted">
        {t("camp.summary", { inbox, subject: c.subject })} · {t("camp.f.when")}: {dateTime(c.scheduled_at) || "—"}
        {c.started_at && ` · ${t("camp.started", { at: dateTime(c.started_at) })}`}
        {c.finished_at && ` · ${t("camp.finished", { at: dateTime(c.finished_at) })}`}
      </p>
      <Progress c={c} />
      <dl className="totals row gap wrap" data-testid="camp-totals">
        {TOTALS.map((k) => (
          <div key={k} className="card total" data-testid={`total-${k}`}>
            <dt className="muted small">{t(`camp.total.${k}`)}</dt>
            <dd>{c.totals[k]}</dd>
          </div>
        ))}
      </dl>
      <div className="row gap">
        <h2>{t("camp.recipients")}</h2>
        <select value={filter} onChange={(e) => setFilter(e.target.value)} aria-label={t("camp.state")} data-testid="rcpt-filter">
          <option value="">{t("camp.state_any")}</option>
          {RECIPIENT_STATES.map((s) => (
            <option key={s} value={s}>{t(`rcpt.${s}`)}</option>
          ))}
        </select>
      </div>
      <table className="table" data-testid="recipients">
        <thead>
          <tr>
            <th>{t("contacts.name")}</th>
            <th>{t("out.address")}</th>
            <th>{t("camp.state")}</th>
            <th>{t("camp.sent_at")}</th>
            <th>{t("camp.error")}</th>
          </tr>
        </thead>
        <tbody>
          {recipients.map((r) => (
            <tr key={r.id} data-testid="rcpt-row">
              <td>{r.name || "—"}</td>
              <td>{r.address}</td>
              <td><span className="badge">{t(`rcpt.${r.state}`)}</span></td>
              <td>{dateTime(r.sent_at) || (r.not_before ? t("camp.not_before", { at: dateTime(r.not_before) }) : "")}</td>
              <td>{r.error}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {recipients.length === 0 && <p className="muted">{t("camp.no_recipients")}</p>}
      {next && <button onClick={() => void load(next)}>{t("list.more")}</button>}
      {asking && (
        <Dialog label={t(asking === "cancel" ? "camp.cancel_q" : "camp.delete_q")} testId="camp-confirm" onClose={() => setAsking(null)}>
          <h2>{t(asking === "cancel" ? "camp.cancel_q" : "camp.delete_q")}</h2>
          <p>{t(asking === "cancel" ? "camp.cancel_help" : "camp.delete_help")}</p>
          <div className="actions">
            <button onClick={() => setAsking(null)} autoFocus data-testid="camp-confirm-no">{t("common.cancel")}</button>
            <button className="danger" onClick={() => void (asking === "cancel" ? act("cancel") : remove())} data-testid="camp-confirm-yes">
              {t(asking === "cancel" ? "camp.cancel" : "admin.delete")}
            </button>
          </div>
        </Dialog>
      )}
    </main>
  );
}
