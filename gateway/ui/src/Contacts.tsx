import { FormEvent, ReactNode, useCallback, useEffect, useState } from "react";
import { api, Contact, TimelineItem } from "./api";
import { CustomerData } from "./CustomerData";
import { errorText } from "./errors";
import { useFormat } from "./format";
import { go } from "./App";
import { Key, useI18n } from "./i18n";

const SEARCH_DELAY_MS = 400;

const lines = (s: string) =>
  s
    .split(/[\n,]/)
    .map((x) => x.trim())
    .filter(Boolean);

// `masked`: the operator may not see customers' addresses, so the server searches names and
// companies only (SEC-6); the search box says so.
export function ContactList({ masked, tabs }: { masked: boolean; tabs?: ReactNode }) {
  const { t } = useI18n();
  const [q, setQ] = useState("");
  const [query, setQuery] = useState("");
  const [items, setItems] = useState<Contact[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState("");

  const load = useCallback(
    async (cursor: string | null) => {
      try {
        const r = await api.get<{ items: Contact[]; next: string | null }>("/contacts", { q: query, limit: 100, cursor });
        setItems((old) => (cursor ? [...old, ...r.items] : r.items));
        setNext(r.next);
        setError("");
      } catch (e) {
        setError(errorText(e, t));
      }
    },
    [query, t],
  );

  useEffect(() => {
    void load(null);
  }, [load]);

  // searched as the operator types (a moment after the last key), or at Enter
  useEffect(() => {
    const h = window.setTimeout(() => setQuery(q.trim()), SEARCH_DELAY_MS);
    return () => window.clearTimeout(h);
  }, [q]);

  return (
    <main className="page" data-testid="contacts">
      {tabs && <h1>{t("contacts.title")}</h1>}
      {tabs}
      <div className="row gap">
        {!tabs && <h1>{t("contacts.title")}</h1>}
        <form
          onSubmit={(e) => {
            e.preventDefault();
            setQuery(q.trim());
          }}
        >
          <input
            type="search"
            placeholder={t(masked ? "contacts.search_masked" : "contacts.search")}
            title={masked ? t("contacts.search_masked_help") : undefined}
            value={q}
            onChange={(e) => setQ(e.target.value)}
            data-testid="contact-search"
          />
        </form>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      <table className="table">
        <thead>
          <tr>
            <th>{t("contacts.name")}</th>
            <th>{t("contacts.addresses")}</th>
            <th>{t("contacts.company")}</th>
            <th>{t("contacts.tickets")}</th>
          </tr>
        </thead>
        <tbody>
          {items.map((c) => (
            <tr key={c.id} className="clickable" onClick={() => go(`/contacts/${c.id}`)} data-testid="contact-row">
              <td>{c.name || "—"}</td>
              <td>{c.addresses.join(", ")}</td>
              <td>{c.company}</td>
              <td>{c.ticket_count}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {items.length === 0 && !error && <p className="muted">{t("contacts.none")}</p>}
      {next && <button onClick={() => void load(next)}>{t("list.more")}</button>}
    </main>
  );
}

export function ContactView({ id, masked }: { id: string; masked: boolean }) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const [contact, setContact] = useState<Contact | null>(null);
  const [timeline, setTimeline] = useState<TimelineItem[]>([]);
  const [form, setForm] = useState({ name: "", company: "", memo: "", addresses: "", phones: "", value: "", vip: false });
  const [custom, setCustom] = useState<{ key: string; value: string }[]>([]);
  const [notice, setNotice] = useState("");
  const [mergeQ, setMergeQ] = useState("");
  const [candidates, setCandidates] = useState<Contact[]>([]);

  const load = useCallback(async () => {
    try {
      const c = await api.get<Contact>(`/contacts/${id}`);
      setContact(c);
      setForm({
        name: c.name,
        company: c.company,
        memo: c.memo,
        addresses: c.addresses.join("\n"),
        phones: c.phones.join("\n"),
        value: c.customer_value == null ? "" : String(c.customer_value),
        vip: !!c.vip,
      });
      setCustom(Object.entries(c.custom).map(([key, value]) => ({ key, value })));
      const tl = await api.get<{ items: TimelineItem[] }>(`/contacts/${id}/timeline`, { limit: 100 });
      setTimeline(tl.items);
    } catch (e) {
      setNotice(errorText(e, t));
    }
  }, [id, t]);

  useEffect(() => {
    void load();
  }, [load]);

  const save = async (e: FormEvent) => {
    e.preventDefault();
    try {
      await api.patch(`/contacts/${id}`, {
        name: form.name,
        company: form.company,
        memo: form.memo,
        // masked addresses and phones are shown, never sent back (the server refuses a change)
        ...(masked ? {} : { addresses: lines(form.addresses), phones: lines(form.phones) }),
        custom: Object.fromEntries(custom.filter((f) => f.key.trim()).map((f) => [f.key.trim(), f.value])),
        // routing's facts of the customer (issue 18), where the server keeps them
        ...(contact && "vip" in contact ? { customer_value: form.value.trim() === "" ? null : Number(form.value), vip: form.vip } : {}),
      });
      setNotice(t("common.saved"));
      await load();
    } catch (err) {
      setNotice(errorText(err, t));
    }
  };

  const searchMerge = async () => {
    const r = await api.get<{ items: Contact[] }>("/contacts", { q: mergeQ, limit: 20 });
    setCandidates(r.items.filter((c) => c.id !== id));
  };

  const merge = async (source: Contact) => {
    try {
      await api.post(`/contacts/${id}/merge`, { source_id: source.id });
      setCandidates([]);
      setMergeQ("");
      await load();
      setNotice(t("contacts.merged", { name: source.name || source.addresses[0] || "" }));
    } catch (e) {
      setNotice(errorText(e, t));
    }
  };

  if (!contact) return <main className="page muted">{notice || t("list.loading")}</main>;
  return (
    <main className="page" data-testid="contact">
      <a href="#/contacts">← {t("contacts.title")}</a>
      <h1 data-testid="contact-name">{contact.name || contact.addresses[0]}</h1>
      {contact.merged_into && <p className="notice">{t("contacts.was_merged")}</p>}
      {notice && <p className="notice" role="status" data-testid="contact-notice">{notice}</p>}
      <CustomerData path={`/contacts/${id}/customer-data`} />
      <div className="two">
        <form className="card" onSubmit={save}>
          <label>
            {t("contacts.name")}
            <input value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} data-testid="contact-edit-name" />
          </label>
          <label>
            {t("contacts.company")}
            <input value={form.company} onChange={(e) => setForm({ ...form, company: e.target.value })} />
          </label>
          <label>
            {t("contacts.addresses")}
            <textarea rows={2} value={form.addresses} readOnly={masked} onChange={(e) => setForm({ ...form, addresses: e.target.value })} data-testid="contact-edit-addresses" />
          </label>
          <label>
            {t("contacts.phones")}
            <textarea rows={2} value={form.phones} readOnly={masked} onChange={(e) => setForm({ ...form, phones: e.target.value })} data-testid="contact-edit-phones" />
          </label>
          {"vip" in contact && (
            <div className="row gap wrap" data-testid="contact-routing">
              <label title={t("contacts.customer_value_help")}>
                {t("contacts.customer_value")}
                <input
                  type="number"
                  min={0}
                  max={1000000}
                  step={1}
                  value={form.value}
                  onChange={(e) => setForm({ ...form, value: e.target.value })}
                  data-testid="contact-value"
                />
              </label>
              <label className="check">
                <input type="checkbox" checked={form.vip} onChange={(e) => setForm({ ...form, vip: e.target.checked })} data-testid="contact-vip" />
                {t("contacts.vip")}
              </label>
            </div>
          )}
          <label>
            {t("contacts.memo")}
            <textarea rows={3} value={form.memo} onChange={(e) => setForm({ ...form, memo: e.target.value })} data-testid="contact-memo" />
          </label>
          <fieldset className="custom-fields" data-testid="custom-fields">
            <legend>{t("contacts.custom")}</legend>
            {custom.map((f, i) => (
              <div className="row gap" key={i}>
                <input
                  aria-label={t("contacts.custom_key")}
                  placeholder={t("contacts.custom_key")}
                  value={f.key}
                  onChange={(e) => setCustom(custom.map((x, k) => (k === i ? { ...x, key: e.target.value } : x)))}
                  data-testid="custom-key"
                />
                <input
                  aria-label={t("contacts.custom_value")}
                  placeholder={t("contacts.custom_value")}
                  value={f.value}
                  onChange={(e) => setCustom(custom.map((x, k) => (k === i ? { ...x, value: e.target.value } : x)))}
                  data-testid="custom-value"
                />
                <button type="button" className="small" onClick={() => setCustom(custom.filter((_, k) => k !== i))}>
                  {t("contacts.custom_remove")}
                </button>
              </div>
            ))}
            <button
              type="button"
              className="small"
              disabled={custom.length >= 50}
              onClick={() => setCustom([...custom, { key: "", value: "" }])}
              data-testid="custom-add"
            >
              {t("contacts.custom_add")}
            </button>
          </fieldset>
          <button className="primary" type="submit" data-testid="contact-save">{t("common.save")}</button>
        </form>
        <div className="card">
          <strong>{t("contacts.merge")}</strong>
          <p className="muted small">{t("contacts.merge_help")}</p>
          <div className="row gap">
            <input
              type="search"
              placeholder={t(masked ? "contacts.search_masked" : "contacts.search")}
              value={mergeQ}
              onChange={(e) => setMergeQ(e.target.value)}
              data-testid="merge-search"
            />
            <button onClick={() => void searchMerge()}>{t("contacts.find")}</button>
          </div>
          <ul>
            {candidates.map((c) => (
              <li key={c.id}>
                {c.name || "—"} <span className="muted small">{c.addresses.join(", ")}</span>{" "}
                <button onClick={() => void merge(c)} data-testid="merge-this">{t("contacts.merge_this")}</button>
              </li>
            ))}
          </ul>
        </div>
      </div>
      <h2>{t("contacts.timeline")}</h2>
      <ul className="timeline-list" data-testid="contact-timeline">
        {timeline.map((e, i) => (
          <li key={i}>
            <span className="muted small">{dateTime(e.at)}</span>{" "}
            <span className="badge">{t(`timeline.${e.type}` as Key)}</span>{" "}
            <a href={`#/tickets/${e.ticket_id}`}>
              {e.ticket?.subject ?? e.message?.subject ?? e.message?.body ?? e.comment?.body ?? ""}
            </a>
          </li>
        ))}
      </ul>
    </main>
  );
}
