// Contacts → リスト (issue 20, OUT-6): the contact lists with their member counts, created,
// renamed and deleted here; a list's members (paged, searched), one added by hand, and a CSV
// file imported into it with its progress and each refused line.
import { FormEvent, useCallback, useEffect, useRef, useState } from "react";
import { api } from "./api";
import { Dialog } from "./Dialog";
import { errorText, fieldLabel } from "./errors";
import { useFormat } from "./format";
import { T, useI18n } from "./i18n";
import { ContactList, Import, Member } from "./outreachTypes";

const SEARCH_DELAY_MS = 400;

/** A refused line's reason in the operator's words where it names a column
 * ("address: … is not a mail address"), with the server's words after it. */
function lineError(message: string, t: T): string {
  const m = /^([a-z_.]+): (.*)$/s.exec(message);
  const label = m ? fieldLabel(m[1], t) : "";
  if (!m || !label) return message;
  return t("error.detail", { text: t("error.in_field", { text: t("error.invalid_argument"), field: label }), detail: m[2] });
}
const IMPORT_POLL_MS = 1000;

export function ListsScreen() {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const [lists, setLists] = useState<ContactList[] | null>(null);
  const [form, setForm] = useState({ name: "", description: "" });
  const [renaming, setRenaming] = useState<ContactList | null>(null);
  const [removing, setRemoving] = useState<ContactList | null>(null);
  const [notice, setNotice] = useState("");

  const load = useCallback(async () => {
    try {
      setLists((await api.get<{ lists: ContactList[] }>("/contact-lists")).lists);
    } catch (e) {
      setNotice(errorText(e, t));
    }
  }, [t]);
  useEffect(() => {
    void load();
  }, [load]);

  const create = async (e: FormEvent) => {
    e.preventDefault();
    try {
      const l = await api.post<ContactList>("/contact-lists", form);
      setForm({ name: "", description: "" });
      setNotice(t("out.list_created", { name: l.name }));
      await load();
    } catch (err) {
      setNotice(errorText(err, t));
    }
  };

  const rename = async (e: FormEvent) => {
    e.preventDefault();
    if (!renaming) return;
    try {
      await api.patch(`/contact-lists/${renaming.id}`, { name: renaming.name, description: renaming.description });
      setRenaming(null);
      setNotice(t("common.saved"));
      await load();
    } catch (err) {
      setNotice(errorText(err, t));
    }
  };

  const remove = async (l: ContactList) => {
    setRemoving(null);
    try {
      await api.del(`/contact-lists/${l.id}`);
      setNotice(t("out.list_deleted", { name: l.name }));
      await load();
    } catch (err) {
      setNotice(errorText(err, t));
    }
  };

  return (
    <>
      {notice && <p className="notice" role="status" data-testid="lists-notice">{notice}</p>}
      <form className="row gap wrap card" onSubmit={create} data-testid="list-create">
        <input
          placeholder={t("out.list_name")}
          aria-label={t("out.list_name")}
          value={form.name}
          onChange={(e) => setForm({ ...form, name: e.target.value })}
          data-testid="list-name"
        />
        <input
          placeholder={t("out.list_description")}
          aria-label={t("out.list_description")}
          value={form.description}
          onChange={(e) => setForm({ ...form, description: e.target.value })}
          data-testid="list-description"
        />
        <button className="primary" type="submit" data-testid="list-create-submit">{t("out.list_new")}</button>
      </form>
      <table className="table" data-testid="lists">
        <thead>
          <tr>
            <th>{t("out.list_name")}</th>
            <th>{t("out.list_description")}</th>
            <th>{t("out.members")}</th>
            <th>{t("out.updated_at")}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(lists ?? []).map((l) => (
            <tr key={l.id} data-testid="list-row">
              <td>
                <a href={`#/contacts/lists/${l.id}`} data-testid="list-open">{l.name}</a>
              </td>
              <td>{l.description}</td>
              <td data-testid="list-count">{l.member_count}</td>
              <td>{dateTime(l.updated_at)}</td>
              <td className="row gap">
                <button className="small" onClick={() => setRenaming({ ...l })} data-testid="list-rename">{t("out.rename")}</button>
                <button className="small" onClick={() => setRemoving(l)} data-testid="list-delete">{t("admin.delete")}</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {lists?.length === 0 && <p className="muted">{t("out.no_lists")}</p>}
      {renaming && (
        <Dialog label={t("out.rename")} testId="list-rename-dialog" onClose={() => setRenaming(null)}>
          <form className="form" onSubmit={rename}>
            <h2>{t("out.rename")}</h2>
            <div className="field">
              <label htmlFor="rename-name">{t("out.list_name")}</label>
              <input id="rename-name" value={renaming.name} onChange={(e) => setRenaming({ ...renaming, name: e.target.value })} data-testid="rename-name" autoFocus />
            </div>
            <div className="field">
              <label htmlFor="rename-description">{t("out.list_description")}</label>
              <input id="rename-description" value={renaming.description} onChange={(e) => setRenaming({ ...renaming, description: e.target.value })} />
            </div>
            <div className="actions">
              <button type="button" onClick={() => setRenaming(null)}>{t("common.cancel")}</button>
              <button className="primary" type="submit" data-testid="rename-save">{t("common.save")}</button>
            </div>
          </form>
        </Dialog>
      )}
      {removing && (
        <Dialog label={t("out.list_delete_q", { name: removing.name })} testId="list-delete-dialog" onClose={() => setRemoving(null)}>
          <h2>{t("out.list_delete_q", { name: removing.name })}</h2>
          <p>{t("out.list_delete_help")}</p>
          <div className="actions">
            <button onClick={() => setRemoving(null)} autoFocus>{t("common.cancel")}</button>
            <button className="danger" onClick={() => void remove(removing)} data-testid="list-delete-confirm">{t("admin.delete")}</button>
          </div>
        </Dialog>
      )}
    </>
  );
}

/** A CSV file into the list: the import runs on the server; its progress is read each
 * second until it is done, then the refused lines are listed. */
function CsvImport({ listId, onDone }: { listId: string; onDone: () => void }) {
  const { t } = useI18n();
  const [file, setFile] = useState<File | null>(null);
  const [job, setJob] = useState<Import | null>(null);
  const [notice, setNotice] = useState("");
  const input = useRef<HTMLInputElement>(null);

  useEffect(() => {
    if (!job || job.state !== "running") return;
    const h = window.setTimeout(async () => {
      try {
        const j = await api.get<Import>(`/contact-imports/${job.id}`);
        setJob(j);
        if (j.state !== "running") onDone();
      } catch (e) {
        setNotice(errorText(e, t));
      }
    }, IMPORT_POLL_MS);
    return () => window.clearTimeout(h);
  }, [job, onDone, t]);

  const start = async () => {
    if (!file) return;
    setNotice("");
    try {
      const j = await api.post<Import>(`/contact-lists/${listId}/imports`, file.slice(0, file.size, "text/csv"));
      setJob(j);
      if (j.state !== "running") onDone();
      setFile(null);
      if (input.current) input.current.value = "";
    } catch (e) {
      setNotice(errorText(e, t));
    }
  };

  const pct = job && job.total_lines > 0 ? Math.round((100 * job.processed) / job.total_lines) : job?.state === "running" ? 0 : 100;
  return (
    <div className="card" data-testid="csv-import">
      <strong>{t("out.import")}</strong>
      <p className="muted small">{t("out.import_help")}</p>
      <div className="row gap">
        <input ref={input} type="file" accept=".csv,text/csv" onChange={(e) => setFile(e.target.files?.[0] ?? null)} data-testid="csv-file" aria-label={t("out.import_file")} />
        <button className="primary" disabled={!file || job?.state === "running"} onClick={() => void start()} data-testid="csv-start">
          {t("out.import_start")}
        </button>
      </div>
      {notice && <p className="error" role="alert">{notice}</p>}
      {job && (
        <div data-testid="import-progress">
          <progress max={100} value={pct} aria-label={t("out.import_progress")} />{" "}
          <span data-testid="import-state">
            {t(job.state === "running" ? "out.import_running" : job.state === "done" ? "out.import_done" : "out.import_failed", {
              processed: job.processed,
              total: job.total_lines,
              imported: job.imported,
              failed: job.failed,
            })}
          </span>
          {job.state === "failed" && job.message && <span className="muted small"> ({job.message})</span>}
          {job.errors.length > 0 && (
            <table className="table" data-testid="import-errors">
              <thead>
                <tr>
                  <th>{t("out.import_line")}</th>
                  <th>{t("out.import_error")}</th>
                </tr>
              </thead>
              <tbody>
                {job.errors.map((e, i) => (
                  <tr key={i} data-testid="import-error">
                    <td>{e.line}</td>
                    <td>{lineError(e.message, t)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      )}
    </div>
  );
}

export function ListView({ id, masked }: { id: string; masked: boolean }) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const [list, setList] = useState<ContactList | null>(null);
  const [members, setMembers] = useState<Member[]>([]);
  const [next, setNext] = useState("");
  const [q, setQ] = useState("");
  const [query, setQuery] = useState("");
  const [adding, setAdding] = useState({ address: "", name: "" });
  const [notice, setNotice] = useState("");

  const load = useCallback(
    async (cursor = "") => {
      try {
        if (!cursor) setList(await api.get<ContactList>(`/contact-lists/${id}`));
        const r = await api.get<{ members: Member[]; next_cursor: string }>(`/contact-lists/${id}/members`, { cursor, limit: 50, query });
        setMembers((old) => (cursor ? [...old, ...r.members] : r.members));
        setNext(r.next_cursor);
      } catch (e) {
        setNotice(errorText(e, t));
      }
    },
    [id, query, t],
  );
  useEffect(() => {
    void load();
  }, [load]);
  useEffect(() => {
    const h = window.setTimeout(() => setQuery(q.trim()), SEARCH_DELAY_MS);
    return () => window.clearTimeout(h);
  }, [q]);
  const reload = useCallback(() => void load(), [load]);

  const add = async (e: FormEvent) => {
    e.preventDefault();
    try {
      const contact = { address: adding.address.trim(), ...(adding.name.trim() ? { name: adding.name.trim() } : {}) };
      const r = await api.post<{ added: number; updated: number; errors: { message: string; field: string }[] }>(
        `/contact-lists/${id}/members`,
        { contacts: [contact] },
      );
      const refused = r.errors[0];
      if (refused) {
        const said = refused.message.startsWith(`${refused.field}:`) ? refused.message : `${refused.field}: ${refused.message}`;
        setNotice(t("out.member_refused", { message: lineError(said, t) }));
      }
      else {
        setNotice(t(r.added ? "out.member_added" : "out.member_updated", { address: contact.address }));
        setAdding({ address: "", name: "" });
      }
      await load();
    } catch (err) {
      setNotice(errorText(err, t));
    }
  };

  const removeMember = async (m: Member) => {
    try {
      await api.del(`/contact-lists/${id}/members/${m.contact_id}`);
      await load();
    } catch (err) {
      setNotice(errorText(err, t));
    }
  };

  return (
    <>
      <div className="row gap">
        <a href="#/contacts/lists">← {t("out.tab.lists")}</a>
        <h2 data-testid="list-title">{list?.name ?? ""}</h2>
        <span className="muted" data-testid="list-member-count">{list ? t("out.member_count", { n: list.member_count }) : ""}</span>
      </div>
      {notice && <p className="notice" role="status" data-testid="list-notice">{notice}</p>}
      <div className="two">
        <form className="card row gap wrap start" onSubmit={add} data-testid="member-add">
          <strong>{t("out.member_add")}</strong>
          <input type="email" placeholder={t("out.address")} aria-label={t("out.address")} value={adding.address} onChange={(e) => setAdding({ ...adding, address: e.target.value })} data-testid="member-address" />
          <input placeholder={t("contacts.name")} aria-label={t("contacts.name")} value={adding.name} onChange={(e) => setAdding({ ...adding, name: e.target.value })} data-testid="member-name" />
          <button className="primary" type="submit" disabled={!adding.address.trim()} data-testid="member-add-submit">{t("out.add")}</button>
        </form>
        <CsvImport listId={id} onDone={reload} />
      </div>
      <div className="row gap">
        <input type="search" size={40} placeholder={t(masked ? "contacts.search_masked" : "contacts.search")} aria-label={t(masked ? "contacts.search_masked" : "contacts.search")} value={q} onChange={(e) => setQ(e.target.value)} data-testid="member-search" />
      </div>
      <table className="table" data-testid="members">
        <thead>
          <tr>
            <th>{t("contacts.name")}</th>
            <th>{t("out.address")}</th>
            <th>{t("out.labels")}</th>
            <th>{t("out.added_at")}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {members.map((m) => (
            <tr key={m.contact_id} data-testid="member-row">
              <td>
                <a href={`#/contacts/${m.contact_id}`}>{m.name || "—"}</a>
              </td>
              <td>{m.address}</td>
              <td>{m.labels.map((l) => <span key={l} className="badge">{l}</span>)}</td>
              <td>{dateTime(m.added_at)}</td>
              <td>
                <button className="small" onClick={() => void removeMember(m)} data-testid="member-remove">{t("out.remove_from_list")}</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {members.length === 0 && <p className="muted">{t("out.no_members")}</p>}
      {next && <button onClick={() => void load(next)}>{t("list.more")}</button>}
    </>
  );
}
