import { useCallback, useEffect, useState } from "react";
import { api } from "./api";
import { Ctx, Section } from "./adminTypes";
import { Dialog } from "./Dialog";
import { errorText } from "./errors";
import { useFormat } from "./format";
import { Key, useI18n } from "./i18n";
import { Say, useNotice } from "./routingForm";

// The webhooks of routing rules (issue 18, the action "call the webhook"): the tenant's
// signing secret — its hint, a new one made on request and shown once, with a copy button
// — and the calls by state: failed ones (dead letters, after their last retry) each with
// a Retry, those waiting for their next attempt, those delivered.
// (GET/POST /rules/webhook-secret, GET /rules/webhook-deliveries, POST …/{id}/retry)

interface Secret {
  configured: boolean;
  hint: string | null;
  created_at: string | null;
  secret?: string;
}
interface Delivery {
  id: string;
  rule: { id: string; name: string };
  url: string;
  trigger: string;
  ticket: { id: string; number: number } | null;
  state: "dead" | "pending" | "delivered";
  attempts: number;
  last_error: string | null;
  created_at: string;
  next_attempt_at: string | null;
  delivered_at: string | null;
}
const STATES = ["dead", "pending", "delivered"] as const;
type State = (typeof STATES)[number];

function SecretBox({ say }: { say: (s: Say) => void }) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const [secret, setSecret] = useState<Secret | null>(null);
  const [shown, setShown] = useState("");
  const [asking, setAsking] = useState(false);
  useEffect(() => {
    api.get<Secret>("/rules/webhook-secret").then(setSecret, (e) => say((t) => errorText(e, t)));
  }, [t, say]);
  const rotate = async () => {
    setAsking(false);
    try {
      const s = await api.post<Secret>("/rules/webhook-secret", undefined);
      setSecret(s);
      setShown(s.secret ?? "");
    } catch (e) {
      say((t) => errorText(e, t));
    }
  };
  return (
    <section className="policy-box" data-testid="webhook-secret">
      <strong>{t("wh.secret")}</strong>
      <p className="small" data-testid="webhook-secret-state">
        {secret?.configured ? t("wh.secret_hint", { hint: (secret.hint ?? "").replace(/^…/, ""), at: dateTime(secret.created_at) }) : t("wh.secret_none")}
      </p>
      {shown && (
        <div className="row gap wrap" data-testid="webhook-secret-once">
          <span className="small">{t("wh.secret_once")}</span>
          <code className="mono secret" data-testid="webhook-secret-value">{shown}</code>
          <button
            type="button"
            className="small"
            onClick={() => void navigator.clipboard?.writeText(shown).then(() => say((t) => t("wh.copied")), () => {})}
          >
            {t("wh.copy")}
          </button>
        </div>
      )}
      <p className="muted small mono">{t("wh.signature_help")}</p>
      <div className="row">
        <button type="button" onClick={() => setAsking(true)} data-testid="webhook-rotate">{t("wh.rotate")}</button>
      </div>
      {asking && (
        <Dialog label={t("wh.rotate")} testId="webhook-rotate-dialog" onClose={() => setAsking(false)}>
          <h2>{t("wh.rotate")}</h2>
          <p>{t("wh.rotate_confirm")}</p>
          <div className="actions">
            <button onClick={() => setAsking(false)} autoFocus>{t("common.cancel")}</button>
            <button className="primary" onClick={() => void rotate()} data-testid="webhook-rotate-confirm">{t("wh.rotate")}</button>
          </div>
        </Dialog>
      )}
    </section>
  );
}

function Deliveries({ say }: { say: (s: Say) => void }) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const [state, setState] = useState<State>("dead");
  const [rows, setRows] = useState<Delivery[] | null>(null);
  const load = useCallback(async () => {
    try {
      setRows((await api.get<{ deliveries: Delivery[] }>("/rules/webhook-deliveries", { state, limit: 50 })).deliveries);
    } catch (e) {
      setRows([]);
      say((t) => errorText(e, t));
    }
  }, [state, t, say]);
  useEffect(() => {
    setRows(null);
    void load();
  }, [load]);
  const retry = async (d: Delivery) => {
    try {
      await api.post(`/rules/webhook-deliveries/${d.id}/retry`, undefined);
      say((t) => t("wh.retried", { url: d.url }));
    } catch (e) {
      say((t) => errorText(e, t));
    }
    await load();
  };
  return (
    <section data-testid="webhook-deliveries">
      <div className="row gap">
        <h2>{t("wh.deliveries")}</h2>
        <span className="spacer" />
        <select aria-label={t("rf.state")} value={state} onChange={(e) => setState(e.target.value as State)} data-testid="webhook-state">
          {STATES.map((s) => (
            <option key={s} value={s}>{t(`wh.state.${s}` as Key)}</option>
          ))}
        </select>
        <button type="button" className="small" onClick={() => void load()}>↻</button>
      </div>
      {rows === null ? (
        <p className="muted">{t("list.loading")}</p>
      ) : rows.length === 0 ? (
        <p className="muted" data-testid="webhook-empty">{t(`wh.none.${state}` as Key)}</p>
      ) : (
        <table className="table deliveries">
          <thead>
            <tr>
              <th>{t("wh.col.when")}</th>
              <th>{t("wh.col.rule")}</th>
              <th>{t("wh.col.url")}</th>
              <th>{t("wh.col.ticket")}</th>
              <th>{t("wh.col.attempts")}</th>
              <th>{t("wh.col.error")}</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {rows.map((d) => (
              <tr key={d.id} data-testid="webhook-delivery" data-state={d.state}>
                <td className="nowrap">{dateTime(d.created_at)}</td>
                <td>{d.rule.name}</td>
                <td className="mono ellipsis url" title={d.url}>{d.url}</td>
                <td>{d.ticket ? <a href={`#/tickets/${d.ticket.id}`}>#{d.ticket.number}</a> : "—"}</td>
                <td>{d.attempts}</td>
                <td className="small" data-testid="webhook-error">
                  {d.last_error ?? ""}
                  {d.state === "pending" && d.next_attempt_at && <div className="muted">{t("wh.next_at", { at: dateTime(d.next_attempt_at) })}</div>}
                  {d.state === "delivered" && d.delivered_at && <div className="muted">{t("wh.delivered_at", { at: dateTime(d.delivered_at) })}</div>}
                </td>
                <td>
                  {d.state === "dead" && (
                    <button className="small" onClick={() => void retry(d)} data-testid="webhook-retry">{t("wh.retry")}</button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function WebhooksPage() {
  const { t } = useI18n();
  const [notice, setNotice] = useNotice();
  return (
    <>
      <h1>{t("wh.title")}</h1>
      <p className="muted small">{t("wh.help")}</p>
      {notice && <p className="notice" role="status" data-testid="admin-notice">{notice}</p>}
      <SecretBox say={setNotice} />
      <Deliveries say={setNotice} />
    </>
  );
}

export function webhookSections(_ctx: Ctx): Section[] {
  return [
    {
      key: "webhooks",
      title: "wh.title",
      permission: "manage_rules",
      load: async () => ({ rows: [], next: null }),
      id: () => "",
      columns: [],
      fields: [],
      page: () => <WebhooksPage />,
    },
  ];
}
