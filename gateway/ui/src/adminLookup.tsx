import { FormEvent, useEffect, useState } from "react";
import { api } from "./api";
import { Ctx, Section } from "./adminTypes";
import { CustomerDataResult, LookupFieldValue, reasonText } from "./CustomerData";
import { errorText } from "./errors";
import { Key, useI18n } from "./i18n";
import { useNotice } from "./routingForm";

// Administration → 顧客データ連携 / Customer data (issue 21, DAT-3): the tenant's lookup —
// URL template, header secret (write-only: its hint is shown), timeout, cache time, the
// fields shown with their labels and which one is the customer value, the internal hosts
// allowed — and "try it" with the form as it is (not saved) for an address or a number.
// (GET|PUT /customer-lookup, POST /customer-lookup/try)

interface FieldRow {
  pointer: string;
  label_ja: string;
  label_en: string;
  type: string;
}
interface Config {
  configured: boolean;
  enabled: boolean;
  url_template: string;
  header_name: string;
  secret_hint: string | null;
  timeout_ms: number;
  cache_ttl_s: number;
  fields: FieldRow[];
  value_pointer: string | null;
  allow_hosts: string[];
}
const TYPES = ["text", "number", "date", "url"] as const;

function body(c: Config, secret: string, clear: boolean, hosts: string) {
  return {
    enabled: c.enabled,
    url_template: c.url_template.trim(),
    header_name: c.header_name.trim(),
    ...(secret ? { secret } : {}),
    ...(clear && !secret ? { clear_secret: true } : {}),
    timeout_ms: Number(c.timeout_ms) || 3000,
    cache_ttl_s: Number(c.cache_ttl_s),
    fields: c.fields.filter((f) => f.pointer.trim()).map((f) => ({ ...f, pointer: f.pointer.trim() })),
    value_pointer: c.value_pointer || null,
    allow_hosts: hosts.split("\n").map((h) => h.trim()).filter(Boolean),
  };
}

function TryIt({ payload }: { payload: () => Record<string, unknown> }) {
  const { t, lang } = useI18n();
  const [by, setBy] = useState<"email" | "phone">("email");
  const [value, setValue] = useState("");
  const [result, setResult] = useState<CustomerDataResult | null>(null);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const run = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    setResult(null);
    try {
      setResult(await api.post<CustomerDataResult>("/customer-lookup/try", { [by]: value.trim(), config: payload() }));
    } catch (err) {
      setError(errorText(err, t));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="card" onSubmit={run} data-testid="lookup-try">
      <h2>{t("lk.try")}</h2>
      <div className="row gap wrap">
        <label>
          {t("lk.try_by")}{" "}
          <select value={by} onChange={(e) => setBy(e.target.value as "email" | "phone")} data-testid="lookup-try-by">
            <option value="email">{t("lk.try_email")}</option>
            <option value="phone">{t("lk.try_phone")}</option>
          </select>
        </label>
        <input aria-label={t(by === "email" ? "lk.try_email" : "lk.try_phone")} value={value} onChange={(e) => setValue(e.target.value)} size={28} data-testid="lookup-try-value" />
        <button type="submit" className="primary" disabled={busy || !value.trim()} data-testid="lookup-try-run">{t("lk.try_run")}</button>
      </div>
      {busy && <p className="muted small" role="status">{t("lk.loading")}</p>}
      {error && <p className="error" role="alert" data-testid="lookup-try-error">{error}</p>}
      {result && (
        <div data-testid="lookup-try-result" data-ok={result.ok ? "true" : "false"}>
          <p role="status" className={result.ok ? "small" : "small warn"} data-testid="lookup-try-status" title={result.error_detail ?? ""}>
            {result.ok
              ? t("lk.try_ok", { status: result.http_status ?? "", ms: result.elapsed_ms })
              : t("lk.try_failed", { reason: reasonText(result, t), ms: result.elapsed_ms })}
            {!result.ok && result.error_detail ? ` — ${result.error_detail}` : ""}
          </p>
          {result.ok && (
            <dl className="small facts">
              {result.fields.map((f) => (
                <div key={f.pointer} className="fact" data-testid="lookup-try-field">
                  <dt>{lang === "ja" ? f.label_ja || f.label_en : f.label_en || f.label_ja}</dt>
                  <dd>
                    <LookupFieldValue v={f} />
                  </dd>
                </div>
              ))}
              {result.customer_value != null && (
                <div className="fact">
                  <dt>{t("lk.value")}</dt>
                  <dd data-testid="lookup-try-value-result">{result.customer_value.toLocaleString()}</dd>
                </div>
              )}
            </dl>
          )}
          {result.body && (
            <details>
              <summary>{t("lk.try_body")}</summary>
              <pre className="mono small pre lookup-body" data-testid="lookup-try-body">{result.body}</pre>
            </details>
          )}
        </div>
      )}
    </form>
  );
}

function LookupPage() {
  const { t } = useI18n();
  const [notice, say] = useNotice();
  const [config, setConfig] = useState<Config | null>(null);
  const [secret, setSecret] = useState("");
  const [clear, setClear] = useState(false);
  const [hosts, setHosts] = useState("");
  const show = (c: Config) => {
    setConfig({ ...c, fields: c.fields.length ? c.fields : [{ pointer: "", label_ja: "", label_en: "", type: "text" }] });
    setHosts(c.allow_hosts.join("\n"));
    setSecret("");
    setClear(false);
  };
  useEffect(() => {
    api.get<Config>("/customer-lookup").then(show, (e) => say((t) => errorText(e, t)));
  }, [say]);
  if (!config) return <p className="muted">{notice || t("list.loading")}</p>;
  const set = (patch: Partial<Config>) => setConfig({ ...config, ...patch });
  const setField = (i: number, patch: Partial<FieldRow>) => {
    const fields = config.fields.map((f, j) => (j === i ? { ...f, ...patch } : f));
    const was = config.fields[i].pointer;
    set({ fields, value_pointer: patch.pointer !== undefined && config.value_pointer === was ? patch.pointer : config.value_pointer });
  };
  const save = async (e: FormEvent) => {
    e.preventDefault();
    try {
      show(await api.put<Config>("/customer-lookup", body(config, secret, clear, hosts)));
      say((t) => t("lk.saved"));
    } catch (err) {
      say((t) => errorText(err, t));
    }
  };
  return (
    <>
      <h1>{t("lk.admin")}</h1>
      <p className="muted small">{t("lk.admin_help")}</p>
      {notice && <p className="notice" role="status" data-testid="admin-notice">{notice}</p>}
      <form className="card lookup-form" onSubmit={save} data-testid="lookup-form">
        <label className="check">
          <input type="checkbox" checked={config.enabled} onChange={(e) => set({ enabled: e.target.checked })} data-testid="lookup-enabled" /> {t("lk.enabled")}
        </label>
        <label>
          {t("lk.url_template")}
          <input className="mono" value={config.url_template} onChange={(e) => set({ url_template: e.target.value })} placeholder="https://crm.example.com/api/customers?email={email}" data-testid="lookup-url" />
          <span className="muted small">{t("lk.url_help")}</span>
        </label>
        <div className="row gap wrap">
          <label>
            {t("lk.header_name")}
            <input value={config.header_name} onChange={(e) => set({ header_name: e.target.value })} placeholder="X-Api-Key" data-testid="lookup-header" />
          </label>
          <label>
            {t("lk.secret")}
            <input
              type="password"
              autoComplete="new-password"
              value={secret}
              onChange={(e) => setSecret(e.target.value)}
              placeholder={config.secret_hint ? t("lk.secret_kept", { hint: config.secret_hint.replace(/^…/, "") }) : t("lk.secret_none")}
              data-testid="lookup-secret"
            />
          </label>
          {config.secret_hint && (
            <label className="check">
              <input type="checkbox" checked={clear} onChange={(e) => setClear(e.target.checked)} /> {t("lk.clear_secret")}
            </label>
          )}
        </div>
        <div className="row gap wrap">
          <label>
            {t("lk.timeout_ms")}
            <input type="number" min={100} max={10000} step={100} value={config.timeout_ms} onChange={(e) => set({ timeout_ms: Number(e.target.value) })} data-testid="lookup-timeout" />
          </label>
          <label>
            {t("lk.cache_ttl_s")}
            <input type="number" min={0} max={86400} value={config.cache_ttl_s} onChange={(e) => set({ cache_ttl_s: Number(e.target.value) })} data-testid="lookup-ttl" />
          </label>
        </div>
        <fieldset>
          <legend>{t("lk.fields")}</legend>
          <p className="muted small">{t("lk.value_help")}</p>
          <table className="table lookup-fields">
            <thead>
              <tr>
                <th>{t("lk.pointer")}</th>
                <th>{t("lk.label_ja")}</th>
                <th>{t("lk.label_en")}</th>
                <th>{t("lk.type")}</th>
                <th>{t("lk.is_value")}</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {config.fields.map((f, i) => (
                <tr key={i} data-testid="lookup-field-row">
                  <td><input className="mono" aria-label={t("lk.pointer")} value={f.pointer} onChange={(e) => setField(i, { pointer: e.target.value })} placeholder="/customer/rank" data-testid="lookup-pointer" /></td>
                  <td><input aria-label={t("lk.label_ja")} value={f.label_ja} onChange={(e) => setField(i, { label_ja: e.target.value })} size={10} data-testid="lookup-label-ja" /></td>
                  <td><input aria-label={t("lk.label_en")} value={f.label_en} onChange={(e) => setField(i, { label_en: e.target.value })} size={10} data-testid="lookup-label-en" /></td>
                  <td>
                    <select aria-label={t("lk.type")} value={f.type || "text"} onChange={(e) => setField(i, { type: e.target.value })} data-testid="lookup-type">
                      {TYPES.map((k) => (
                        <option key={k} value={k}>{t(`lk.type.${k}` as Key)}</option>
                      ))}
                    </select>
                  </td>
                  <td>
                    <input
                      type="checkbox"
                      aria-label={t("lk.is_value")}
                      checked={!!f.pointer && config.value_pointer === f.pointer}
                      onChange={(e) => set({ value_pointer: e.target.checked ? f.pointer : null })}
                      data-testid="lookup-is-value"
                    />
                  </td>
                  <td>
                    <button type="button" className="link small" onClick={() => set({ fields: config.fields.filter((_, j) => j !== i), value_pointer: config.value_pointer === f.pointer ? null : config.value_pointer })}>
                      {t("lk.remove_field")}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <button type="button" className="small" onClick={() => set({ fields: [...config.fields, { pointer: "", label_ja: "", label_en: "", type: "text" }] })} data-testid="lookup-add-field">
            {t("lk.add_field")}
          </button>
        </fieldset>
        <label>
          {t("lk.allow_hosts")}
          <textarea rows={2} className="mono" value={hosts} onChange={(e) => setHosts(e.target.value)} data-testid="lookup-allow" />
          <span className="muted small">{t("lk.allow_help")}</span>
        </label>
        <div className="actions">
          <button type="submit" className="primary" data-testid="lookup-save">{t("lk.save")}</button>
        </div>
      </form>
      <TryIt payload={() => body(config, secret, clear, hosts)} />
    </>
  );
}

export function lookupSections(_ctx: Ctx): Section[] {
  return [
    {
      key: "customer-lookup",
      title: "lk.admin",
      permission: "manage_inboxes",
      load: async () => ({ rows: [], next: null }),
      id: () => "",
      columns: [],
      fields: [],
      page: () => <LookupPage />,
    },
  ];
}
