import { useCallback, useEffect, useState } from "react";
import { api } from "./api";
import { errorText } from "./errors";
import { useFormat } from "./format";
import { Key, T, useI18n } from "./i18n";

// The customer's data from the tenant's own system (issue 21, DAT-3) beside a ticket and
// in a contact: loaded on its own, so the ticket is there at once; "unavailable" with the
// reason when the system fails (GET /tickets/{id}/customer-data, /contacts/{id}/customer-data).
// Nothing is shown when the tenant has no lookup.

export interface LookupValue {
  pointer: string;
  label_ja: string;
  label_en: string;
  type: string;
  value: string | null;
}
export interface CustomerDataResult {
  configured: boolean;
  ok: boolean;
  error: string | null;
  error_detail: string | null;
  http_status: number | null;
  elapsed_ms: number;
  cached?: boolean;
  fetched_at?: string | null;
  customer_value: number | null;
  fields: LookupValue[];
  body?: string;
}

/** Why a lookup is unavailable, in the operator's words. */
export function reasonText(r: CustomerDataResult, t: T): string {
  const key = `lk.reason.${r.error ?? "error"}` as Key;
  return t(key, { status: r.http_status ?? "" });
}

/** A mapped value as its type says: numbers grouped, links only to http(s). */
export function LookupFieldValue({ v }: { v: LookupValue }) {
  const { t, lang } = useI18n();
  const { date } = useFormat();
  if (v.value === null || v.value === "") return <span className="muted">{t("lk.empty")}</span>;
  if (v.type === "number" && v.value.trim() !== "" && Number.isFinite(Number(v.value))) {
    return <>{Number(v.value).toLocaleString(lang === "ja" ? "ja-JP" : "en-GB")}</>;
  }
  if (v.type === "url" && /^https?:\/\//i.test(v.value)) {
    return (
      <a href={v.value} target="_blank" rel="noopener noreferrer">
        {v.value}
      </a>
    );
  }
  if (v.type === "date" && /^\d{4}-\d{2}-\d{2}/.test(v.value)) return <>{date(v.value) || v.value}</>;
  return <>{v.value}</>;
}

export function CustomerData({ path }: { path: string }) {
  const { t, lang } = useI18n();
  const { dateTime } = useFormat();
  const [result, setResult] = useState<CustomerDataResult | null>(null);
  const [failed, setFailed] = useState("");
  const [loading, setLoading] = useState(true);
  const load = useCallback(async () => {
    setLoading(true);
    setFailed("");
    try {
      setResult(await api.get<CustomerDataResult>(path));
    } catch (e) {
      setResult(null);
      setFailed(errorText(e, t));
    } finally {
      setLoading(false);
    }
  }, [path, t]);
  useEffect(() => {
    setResult(null);
    void load();
  }, [load]);

  if (!loading && !failed && result && !result.configured) return null;
  const heading = `customer-data-title-${path.replace(/\W/g, "")}`;
  return (
    <section className="customer-data" aria-labelledby={heading} aria-busy={loading} data-testid="customer-data">
      <div className="row gap">
        <strong id={heading}>{t("lk.panel")}</strong>
        <span className="spacer" />
        <button type="button" className="link small" onClick={() => void load()} disabled={loading} data-testid="customer-data-reload" aria-label={t("lk.reload")} title={t("lk.reload")}>
          ↻
        </button>
      </div>
      {loading && !result ? (
        <p className="muted small" role="status" data-testid="customer-data-loading">{t("lk.loading")}</p>
      ) : failed ? (
        <p className="small warn" role="status" data-testid="customer-data-unavailable">{t("lk.unavailable", { reason: failed })}</p>
      ) : result && !result.ok ? (
        <p className="small warn" role="status" data-testid="customer-data-unavailable" data-error={result.error ?? ""} title={result.error_detail ?? ""}>
          {t("lk.unavailable", { reason: reasonText(result, t) })}
        </p>
      ) : result ? (
        <>
          <dl className="small facts" data-testid="customer-data-fields">
            {result.fields.map((f) => (
              <div key={f.pointer} className="fact" data-testid="customer-data-field">
                <dt>{lang === "ja" ? f.label_ja || f.label_en : f.label_en || f.label_ja}</dt>
                <dd data-testid="customer-data-value">
                  <LookupFieldValue v={f} />
                </dd>
              </div>
            ))}
          </dl>
          <div className="muted small" data-testid="customer-data-when">
            {t("lk.fetched", { at: dateTime(result.fetched_at) })} {result.cached ? t("lk.cached") : ""}
          </div>
        </>
      ) : null}
    </section>
  );
}
