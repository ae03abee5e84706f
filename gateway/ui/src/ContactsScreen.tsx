// Contacts (issue 20, OUT-6): the tabs 連絡先 (the contacts, Contacts.tsx) / リスト / セグメント /
// 項目 (the custom field definitions every contact may carry, used by segments and CSV
// imports). Lists, segments and fields need the permission manage_outreach to change; the
// tabs are shown to whoever has it.
import { FormEvent, useEffect, useState } from "react";
import { api } from "./api";
import { Session } from "./App";
import { ContactList } from "./Contacts";
import { ListsScreen, ListView } from "./ContactLists";
import { errorText } from "./errors";
import { Key, useI18n } from "./i18n";
import { FieldDef, FieldType } from "./outreachTypes";
import { SegmentEditor, SegmentsScreen } from "./Segments";

const TABS: { tab: string; key: Key; href: string }[] = [
  { tab: "", key: "out.tab.contacts", href: "#/contacts" },
  { tab: "lists", key: "out.tab.lists", href: "#/contacts/lists" },
  { tab: "segments", key: "out.tab.segments", href: "#/contacts/segments" },
  { tab: "fields", key: "out.tab.fields", href: "#/contacts/fields" },
];
export const CONTACT_TABS = new Set(TABS.map((x) => x.tab).filter(Boolean));

function FieldsEditor() {
  const { t } = useI18n();
  // null until the stored definitions are read: the editor replaces them all when saved,
  // so it never offers rows before it knows them (nor after a failed read)
  const [rows, setRows] = useState<FieldDef[] | null>(null);
  const [notice, setNotice] = useState("");
  useEffect(() => {
    api
      .get<{ fields: FieldDef[] }>("/contact-fields")
      .then((r) => setRows(r.fields))
      .catch((err) => setNotice(errorText(err, t)));
  }, [t]);

  const save = async (e: FormEvent) => {
    e.preventDefault();
    if (!rows) return;
    try {
      const saved = await api.put<{ fields: FieldDef[] }>("/contact-fields", { fields: rows });
      setRows(saved.fields);
      setNotice(t("common.saved"));
    } catch (err) {
      setNotice(errorText(err, t));
    }
  };
  if (!rows) return <div className="card">{notice ? <p className="notice" role="alert">{notice}</p> : <p className="muted">{t("list.loading")}</p>}</div>;
  const set = (i: number, f: Partial<FieldDef>) => setRows(rows.map((r, k) => (k === i ? { ...r, ...f } : r)));
  return (
    <form className="card" onSubmit={save} data-testid="fields-editor">
      <p className="muted small">{t("out.fields_help")}</p>
      {notice && <p className="notice" role="status" data-testid="fields-notice">{notice}</p>}
      <table className="table">
        <thead>
          <tr>
            <th>{t("out.field_key")}</th>
            <th>{t("out.field_label")}</th>
            <th>{t("out.field_type")}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={i} data-testid="field-row">
              <td>
                <input value={r.key} onChange={(e) => set(i, { key: e.target.value })} aria-label={t("out.field_key")} data-testid="field-key" />
              </td>
              <td>
                <input value={r.label} onChange={(e) => set(i, { label: e.target.value })} aria-label={t("out.field_label")} data-testid="field-label" />
              </td>
              <td>
                <select value={r.type} onChange={(e) => set(i, { type: e.target.value as FieldType })} aria-label={t("out.field_type")} data-testid="field-type">
                  {(["text", "number", "date"] as const).map((x) => (
                    <option key={x} value={x}>{t(`out.type.${x}`)}</option>
                  ))}
                </select>
              </td>
              <td>
                <button type="button" className="small" onClick={() => setRows(rows.filter((_, k) => k !== i))}>{t("out.cond_remove")}</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="actions">
        <button type="button" disabled={rows.length >= 50} onClick={() => setRows([...rows, { key: "", label: "", type: "text" }])} data-testid="field-add">
          {t("out.field_add")}
        </button>
        <button className="primary" type="submit" data-testid="fields-save">{t("common.save")}</button>
      </div>
    </form>
  );
}

export function ContactsScreen({ tab, id, session }: { tab: string; id: string; session: Session }) {
  const { t } = useI18n();
  const masked = !session.may("see_customer_addresses");
  const outreach = session.may("manage_outreach");
  if (!outreach || !tab) return <ContactList masked={masked} tabs={outreach ? <Tabs current="" /> : null} />;
  return (
    <main className="page" data-testid={`contacts-${tab}`}>
      <h1>{t("contacts.title")}</h1>
      <Tabs current={tab} />
      {tab === "lists" && (id ? <ListView key={id} id={id} masked={masked} /> : <ListsScreen />)}
      {tab === "segments" && (id ? <SegmentEditor key={id} id={id} /> : <SegmentsScreen />)}
      {tab === "fields" && <FieldsEditor />}
    </main>
  );
}

function Tabs({ current }: { current: string }) {
  const { t } = useI18n();
  return (
    <nav className="tabs" role="tablist" aria-label={t("contacts.title")}>
      {TABS.map((x) => (
        <a key={x.tab} href={x.href} role="tab" aria-selected={x.tab === current} className={x.tab === current ? "tab current" : "tab"} data-testid={`contacts-tab-${x.tab || "contacts"}`}>
          {t(x.key)}
        </a>
      ))}
    </nav>
  );
}
