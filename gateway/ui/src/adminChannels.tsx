import { useCallback, useEffect, useState } from "react";
import { api } from "./api";
import { Ctx, items, Lookups, Option, Row, Section, str } from "./adminTypes";
import { Channel, ChannelIcon, Delivery } from "./channels";
import { Dialog } from "./Dialog";
import { errorText } from "./errors";
import { useFormat } from "./format";
import { Key, useI18n } from "./i18n";
import { live } from "./live";
import { Say, useNotice } from "./routingForm";

// Administration → Channels (issue 21): chat widgets (the tag to paste, allowed origins,
// colour, position, greetings, the inquiry form offered when nobody is present), API
// channels (inbound URL, webhook URL, the signing secret made anew and shown once), LINE
// channels (secret and access token write-only, the webhook URL to paste into LINE's
// console), and the replies whose delivery failed, each with a Retry.
// (/channels, /channels/{id}, /channels/{id}/secret, /channel-deliveries, …/{id}/retry)

type Kind = Channel["kind"];
const KINDS: Kind[] = ["chat", "api", "line"];
type Tab = Kind | "dead";
const STATES = ["dead", "pending", "delivered"] as const;
/** A secret's hint without the server's leading "…" (the words put their own). */
const bare = (hint: string | null | undefined) => (hint ?? "").replace(/^…/, "");

function Copyable({ value, label, testId, say }: { value: string; label: string; testId: string; say: (s: Say) => void }) {
  const { t } = useI18n();
  return (
    <div className="field-block">
      <div className="small">{label}</div>
      <div className="snippet-box">
        <code className="mono" data-testid={testId}>{value}</code>
        <button
          type="button"
          className="small"
          aria-label={`${t("ch.copy")}: ${label}`}
          onClick={() => void navigator.clipboard?.writeText(value).then(() => say((t) => t("ch.copied")), () => {})}
          data-testid={`${testId}-copy`}
        >
          {t("ch.copy")}
        </button>
      </div>
    </div>
  );
}

interface FormValues {
  name: string;
  inbox_id: string;
  enabled: boolean;
  origins: string;
  colour: string;
  position: string;
  greeting_ja: string;
  greeting_en: string;
  offline_form_id: string;
  webhook_url: string;
  window_h: string; // api: the bridged app's reply window in hours ("0": none)
  secret: string;
  access_token: string;
}

function initial(c: Channel | null, inboxes: Option[]): FormValues {
  return {
    name: c?.name ?? "",
    inbox_id: c?.inbox_id ?? inboxes[0]?.value ?? "",
    enabled: c?.enabled ?? true,
    origins: (c?.chat?.allowed_origins ?? []).join("\n"),
    colour: c?.chat?.colour || "#0b57d0",
    position: c?.chat?.position || "right",
    greeting_ja: c?.chat?.greeting_ja ?? "",
    greeting_en: c?.chat?.greeting_en ?? "",
    offline_form_id: c?.chat?.offline_form_id ?? "",
    webhook_url: c?.api?.webhook_url ?? "",
    window_h: String((c?.api?.reply_window_s ?? 0) / 3600),
    secret: "",
    access_token: "",
  };
}

function body(kind: Kind, v: FormValues, creating: boolean): Row {
  const out: Row = { name: v.name.trim(), inbox_id: v.inbox_id };
  if (creating) out.kind = kind;
  else out.enabled = v.enabled;
  if (kind === "chat")
    out.chat = {
      allowed_origins: v.origins.split("\n").map((x) => x.trim()).filter(Boolean),
      colour: v.colour,
      position: v.position,
      greeting_ja: v.greeting_ja,
      greeting_en: v.greeting_en,
      offline_form_id: v.offline_form_id,
    };
  if (kind === "api")
    out.api = { webhook_url: v.webhook_url.trim(), reply_window_s: Math.round(Number(v.window_h || 0) * 3600) };
  if (kind === "line") {
    if (v.secret) out.secret = v.secret;
    if (v.access_token) out.access_token = v.access_token;
  }
  return out;
}

function ChannelForm({
  kind,
  channel,
  lookups,
  done,
}: {
  kind: Kind;
  channel: Channel | null;
  lookups: Lookups;
  done: (saved: Channel | null) => void;
}) {
  const { t } = useI18n();
  const [v, setV] = useState(() => initial(channel, lookups.inboxes));
  const [forms, setForms] = useState<Row[]>([]);
  const [error, setError] = useState("");
  const set = (patch: Partial<FormValues>) => setV((x) => ({ ...x, ...patch }));
  useEffect(() => {
    if (kind === "chat") items("/forms").then(setForms, () => setForms([]));
  }, [kind]);
  // the inboxes may arrive after the form opened: a new channel's is the first
  const firstInbox = lookups.inboxes[0]?.value ?? "";
  useEffect(() => {
    if (firstInbox) setV((x) => (x.inbox_id ? x : { ...x, inbox_id: firstInbox }));
  }, [firstInbox]);
  const save = async () => {
    try {
      const b = body(kind, v, !channel);
      done(channel ? await api.patch<Channel>(`/channels/${channel.id}`, b) : await api.post<Channel>("/channels", b));
    } catch (e) {
      setError(errorText(e, t));
    }
  };
  const ofInbox = forms.filter((f) => (f.inbox as { id?: string } | undefined)?.id === v.inbox_id);
  return (
    <form
      className="card admin-form"
      data-testid="channel-form"
      onSubmit={(e) => {
        e.preventDefault();
        void save();
      }}
    >
      {error && <p className="error" role="alert" data-testid="channel-error">{error}</p>}
      <label>
        {t("ch.name")} <input value={v.name} onChange={(e) => set({ name: e.target.value })} required maxLength={200} data-testid="channel-name" />
      </label>
      <label>
        {t("ch.inbox")}{" "}
        <select value={v.inbox_id} onChange={(e) => set({ inbox_id: e.target.value })} data-testid="channel-inbox">
          {lookups.inboxes.map((o) => (
            <option key={o.value} value={o.value}>{o.label}</option>
          ))}
        </select>
      </label>
      {channel && (
        <label className="check">
          <input type="checkbox" checked={v.enabled} onChange={(e) => set({ enabled: e.target.checked })} /> {t("ch.enabled")}
        </label>
      )}
      {kind === "chat" && (
        <>
          <label>
            {t("ch.origins")}
            <textarea rows={3} value={v.origins} onChange={(e) => set({ origins: e.target.value })} data-testid="channel-origins" />
          </label>
          <div className="row gap wrap">
            <label>
              {t("ch.colour")} <input type="color" value={v.colour} onChange={(e) => set({ colour: e.target.value })} data-testid="channel-colour" />
            </label>
            <label>
              {t("ch.position")}{" "}
              <select value={v.position} onChange={(e) => set({ position: e.target.value })}>
                <option value="right">{t("ch.position.right")}</option>
                <option value="left">{t("ch.position.left")}</option>
              </select>
            </label>
          </div>
          <label>
            {t("ch.greeting_ja")} <input value={v.greeting_ja} onChange={(e) => set({ greeting_ja: e.target.value })} maxLength={500} data-testid="channel-greeting-ja" />
          </label>
          <label>
            {t("ch.greeting_en")} <input value={v.greeting_en} onChange={(e) => set({ greeting_en: e.target.value })} maxLength={500} data-testid="channel-greeting-en" />
          </label>
          <label>
            {t("ch.offline_form")}{" "}
            <select value={v.offline_form_id} onChange={(e) => set({ offline_form_id: e.target.value })} data-testid="channel-offline-form">
              <option value="">{t("ch.offline_none")}</option>
              {ofInbox.map((f) => (
                <option key={str(f.id)} value={str(f.id)}>{str(f.name)}</option>
              ))}
            </select>
          </label>
        </>
      )}
      {kind === "api" && (
        <label>
          {t("ch.webhook_url")} <input type="url" value={v.webhook_url} onChange={(e) => set({ webhook_url: e.target.value })} data-testid="channel-webhook-url" />
        </label>
      )}
      {kind === "api" && (
        <label>
          {t("ch.window_h")}{" "}
          <input type="number" min={0} max={720} step="any" value={v.window_h} onChange={(e) => set({ window_h: e.target.value })} data-testid="channel-window" />
        </label>
      )}
      {kind === "line" && (
        <>
          <label>
            {t("ch.line_secret")}{" "}
            <input type="password" autoComplete="new-password" value={v.secret} onChange={(e) => set({ secret: e.target.value })} placeholder={channel?.secret_hint ? `…${bare(channel.secret_hint)}` : ""} data-testid="channel-line-secret" />
          </label>
          <label>
            {t("ch.line_token")}{" "}
            <input type="password" autoComplete="new-password" value={v.access_token} onChange={(e) => set({ access_token: e.target.value })} data-testid="channel-line-token" />
          </label>
          <p className="muted small">{t("ch.write_only")}</p>
        </>
      )}
      <div className="row gap">
        <button type="button" onClick={() => done(null)}>{t("common.cancel")}</button>
        <button type="submit" className="primary" data-testid="channel-save">{t("ch.save")}</button>
      </div>
    </form>
  );
}

function SecretRotate({ channel, say }: { channel: Channel; say: (s: Say) => void }) {
  const { t } = useI18n();
  const [asking, setAsking] = useState(false);
  const [shown, setShown] = useState("");
  const [hint, setHint] = useState(bare(channel.secret_hint));
  const rotate = async () => {
    setAsking(false);
    try {
      const r = await api.post<{ secret: string; channel: Channel }>(`/channels/${channel.id}/secret`, undefined);
      setShown(r.secret);
      setHint(bare(r.channel?.secret_hint) || r.secret.slice(-4));
    } catch (e) {
      say((t) => errorText(e, t));
    }
  };
  return (
    <div data-testid="channel-secret">
      <span className="small">{t("ch.secret")}: {hint ? t("ch.secret_hint", { hint }) : t("ch.secret_none")}</span>{" "}
      <button type="button" className="small" onClick={() => setAsking(true)} data-testid="channel-rotate">{t("ch.rotate")}</button>
      {shown && <Copyable value={shown} label={t("ch.secret_once")} testId="channel-secret-once" say={say} />}
      {asking && (
        <Dialog label={t("ch.rotate")} testId="channel-rotate-dialog" onClose={() => setAsking(false)}>
          <h2>{t("ch.rotate")}</h2>
          <p>{t("ch.rotate_confirm")}</p>
          <div className="actions">
            <button onClick={() => setAsking(false)} autoFocus>{t("common.cancel")}</button>
            <button className="primary" onClick={() => void rotate()} data-testid="channel-rotate-confirm">{t("ch.rotate")}</button>
          </div>
        </Dialog>
      )}
    </div>
  );
}

function ChannelCard({ c, lookups, edit, remove, say }: { c: Channel; lookups: Lookups; edit: () => void; remove: () => void; say: (s: Say) => void }) {
  const { t } = useI18n();
  const inbox = lookups.inboxes.find((o) => o.value === c.inbox_id)?.label ?? "";
  const window_h = Math.round((c.capabilities?.reply_window_s ?? 0) / 3600);
  return (
    <article className="card" data-testid="channel" data-kind={c.kind} data-name={c.name}>
      <header className="row gap">
        <ChannelIcon kind={c.kind} /> <strong>{c.name}</strong>
        <span className="muted small">{inbox}</span>
        <span className={`badge${c.enabled ? " ok" : ""}`}>{t(c.enabled ? "ch.enabled" : "ch.disabled")}</span>
        {window_h > 0 && <span className="badge">{t("ch.capabilities", { h: window_h })}</span>}
        <span className="spacer" />
        <button type="button" className="small" onClick={edit} data-testid="channel-edit">{t("ch.edit")}</button>
        <button type="button" className="small" onClick={remove} data-testid="channel-delete">{t("ch.delete")}</button>
      </header>
      {c.kind === "chat" && c.snippet && <Copyable value={c.snippet} label={t("ch.snippet")} testId="channel-snippet" say={say} />}
      {c.kind === "chat" && (c.chat?.allowed_origins?.length ?? 0) > 0 && (
        <p className="small" data-testid="channel-origins-shown">{t("ch.origins_shown")}: <span className="mono">{c.chat!.allowed_origins.join(", ")}</span></p>
      )}
      {c.kind === "api" && (
        <>
          {c.inbound_url && <Copyable value={c.inbound_url} label={t("ch.inbound_url")} testId="channel-inbound-url" say={say} />}
          {c.api?.webhook_url && <p className="small">{t("ch.webhook_url")}: <span className="mono">{c.api.webhook_url}</span></p>}
          <SecretRotate channel={c} say={say} />
        </>
      )}
      {c.kind === "line" && (
        <>
          {c.webhook_url && <Copyable value={c.webhook_url} label={t("ch.line_webhook")} testId="channel-line-webhook" say={say} />}
          <p className="small" data-testid="channel-line-state">
            {c.secret_hint ? t("ch.line_secret_set", { hint: bare(c.secret_hint) }) : `${t("ch.line_secret")}: ${t("ch.line_not_set")}`} ·{" "}
            {c.token_set ? t("ch.line_token_set") : `${t("ch.line_token")}: ${t("ch.line_not_set")}`}
          </p>
        </>
      )}
    </article>
  );
}

function ChannelList({ kind, lookups, say }: { kind: Kind; lookups: Lookups; say: (s: Say) => void }) {
  const { t } = useI18n();
  const [rows, setRows] = useState<Channel[] | null>(null);
  const [editing, setEditing] = useState<Channel | "new" | null>(null);
  const [removing, setRemoving] = useState<Channel | null>(null);
  const load = useCallback(async () => {
    try {
      const r = await api.get<{ channels?: Channel[]; items?: Channel[] }>("/channels", { kind });
      setRows(r.channels ?? r.items ?? []);
    } catch (e) {
      setRows([]);
      say((t) => errorText(e, t));
    }
  }, [kind, say]);
  useEffect(() => {
    setRows(null);
    setEditing(null);
    void load();
  }, [load]);
  const remove = async (c: Channel) => {
    setRemoving(null);
    try {
      await api.del(`/channels/${c.id}`);
      say((t) => t("ch.deleted"));
    } catch (e) {
      say((t) => errorText(e, t));
    }
    await load();
  };
  return (
    <section data-testid={`channels-${kind}`}>
      <div className="row gap">
        <span className="spacer" />
        {!editing && <button type="button" className="primary" onClick={() => setEditing("new")} data-testid="channel-new">{t("ch.new")}</button>}
      </div>
      {editing && (
        <ChannelForm
          kind={kind}
          channel={editing === "new" ? null : editing}
          lookups={lookups}
          done={(saved) => {
            if (saved) say((t) => t(editing === "new" ? "ch.created" : "ch.saved"));
            setEditing(null);
            void load();
          }}
        />
      )}
      {rows === null ? (
        <p className="muted">{t("list.loading")}</p>
      ) : rows.length === 0 ? (
        <p className="muted" data-testid="channels-empty">{t("ch.none")}</p>
      ) : (
        rows.map((c) => <ChannelCard key={c.id} c={c} lookups={lookups} edit={() => setEditing(c)} remove={() => setRemoving(c)} say={say} />)
      )}
      {removing && (
        <Dialog label={t("ch.delete")} testId="channel-delete-dialog" onClose={() => setRemoving(null)}>
          <p>{t("ch.delete_confirm", { name: removing.name })}</p>
          <div className="actions">
            <button onClick={() => setRemoving(null)} autoFocus>{t("common.cancel")}</button>
            <button className="danger" onClick={() => void remove(removing)} data-testid="channel-delete-confirm">{t("ch.delete")}</button>
          </div>
        </Dialog>
      )}
    </section>
  );
}

function DeadLetters({ say }: { say: (s: Say) => void }) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const [state, setState] = useState<(typeof STATES)[number]>("dead");
  const [rows, setRows] = useState<Delivery[] | null>(null);
  const load = useCallback(async () => {
    try {
      setRows((await api.get<{ deliveries: Delivery[] }>("/channel-deliveries", { state })).deliveries);
    } catch (e) {
      setRows([]);
      say((t) => errorText(e, t));
    }
  }, [state, say]);
  useEffect(() => {
    setRows(null);
    void load();
  }, [load]);
  // a delivery changed state (failed for good, retried, delivered): the list again
  useEffect(() => live.on((e) => e.type === "channel.delivery" && void load()), [load]);
  const retry = async (d: Delivery) => {
    try {
      await api.post(`/channel-deliveries/${d.id}/retry`, undefined);
      say((t) => t("ch.dead.retried"));
    } catch (e) {
      say((t) => errorText(e, t));
    }
    await load();
  };
  return (
    <section data-testid="channel-deliveries">
      <div className="row gap">
        <p className="muted small">{t("ch.dead.help")}</p>
        <span className="spacer" />
        <select aria-label={t("ch.dead.state")} value={state} onChange={(e) => setState(e.target.value as typeof state)}>
          {STATES.map((s) => (
            <option key={s} value={s}>{t(`ch.state.${s}` as Key)}</option>
          ))}
        </select>
        <button type="button" className="small" aria-label="↻" onClick={() => void load()}>↻</button>
      </div>
      {rows === null ? (
        <p className="muted">{t("list.loading")}</p>
      ) : rows.length === 0 ? (
        <p className="muted" data-testid="channel-deliveries-empty">{t("ch.dead.none")}</p>
      ) : (
        <table className="table deliveries">
          <thead>
            <tr>
              <th>{t("ch.dead.when")}</th>
              <th>{t("ch.dead.channel")}</th>
              <th>{t("ch.dead.ticket")}</th>
              <th>{t("ch.dead.attempts")}</th>
              <th>{t("ch.dead.error")}</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {rows.map((d) => (
              <tr key={d.id} data-testid="channel-delivery" data-state={d.state}>
                <td className="nowrap">{dateTime(d.created_at)}</td>
                <td>{d.channel_name}</td>
                <td>{d.ticket_id ? <a href={`#/tickets/${d.ticket_id}`}>{t("ch.dead.ticket")}</a> : "—"}</td>
                <td>{d.attempts}</td>
                <td className="small">{d.last_error}</td>
                <td>
                  {d.state === "dead" && (
                    <button className="small" onClick={() => void retry(d)} data-testid="channel-delivery-retry">{t("ch.dead.retry")}</button>
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

function ChannelsPage({ lookups }: { lookups: Lookups }) {
  const { t } = useI18n();
  const [notice, setNotice] = useNotice();
  const [tab, setTab] = useState<Tab>("chat");
  const tabs: Tab[] = [...KINDS, "dead"];
  return (
    <>
      <h1>{t("ch.title")}</h1>
      <p className="muted small">{t("ch.help")}</p>
      {notice && <p className="notice" role="status" data-testid="admin-notice">{notice}</p>}
      <div className="ch-tabs" role="tablist">
        {tabs.map((k) => (
          <button key={k} type="button" role="tab" aria-selected={tab === k} onClick={() => setTab(k)} data-testid={`channels-tab-${k}`}>
            {t(`ch.tab.${k}` as Key)}
          </button>
        ))}
      </div>
      {tab === "dead" ? <DeadLetters say={setNotice} /> : <ChannelList key={tab} kind={tab} lookups={lookups} say={setNotice} />}
    </>
  );
}

export function channelSections(_ctx: Ctx): Section[] {
  return [
    {
      key: "channels",
      title: "ch.title",
      permission: "manage_inboxes",
      load: async () => ({ rows: [], next: null }),
      id: () => "",
      columns: [],
      fields: [],
      page: (_c, lookups) => <ChannelsPage lookups={lookups} />,
    },
  ];
}
