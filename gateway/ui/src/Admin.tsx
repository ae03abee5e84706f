import { FormEvent, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Session } from "./App";
import { AdminTable } from "./AdminTable";
import { logSections } from "./adminLogs";
import { approvalSections } from "./adminApproval";
import { lookupSections } from "./adminLookup";
import { channelSections } from "./adminChannels";
import { routingSections } from "./adminRouting";
import { hoursToLines, settingsSections, WordPicker } from "./adminSections";
import { Ctx, Field, items, Lookups, Query, Row, Section, str } from "./adminTypes";
import { DateTimeInput } from "./DateTimeInput";
import { Dialog } from "./Dialog";
import { errorText, permissionLabel } from "./errors";
import { useFormat } from "./format";
import { Key, useI18n } from "./i18n";
import { live } from "./live";

// Administration (issue 8, item 6; issue 16, items 1 and 8): settings and records, one
// section per resource of the API, each shown only with the permission its routes need
// (the server checks it again). One SectionView per section, keyed by it: a section's
// rows, filters, form and pending answers are its own and go with it.

function blank(f: Field): unknown {
  if (f.initial !== undefined) return f.initial;
  if (f.kind === "bool") return f.name === "active" || f.name === "verify_certificate";
  if (f.kind === "multi" || f.kind === "list") return [];
  if (f.kind === "number") return f.name === "port" ? 587 : f.name === "poll_interval_s" ? 60 : 0;
  if (f.kind === "file") return null;
  return "";
}

function toForm(f: Field, v: unknown): unknown {
  if (f.kind === "list") {
    if (f.name === "hours") return hoursToLines(v);
    if (f.name === "thresholds") return (v as { after_minutes: number; color: string }[] | undefined)?.map((x) => `${x.after_minutes} ${x.color}`) ?? [];
    return (v as string[] | undefined) ?? [];
  }
  if (v === null || v === undefined) return blank(f);
  return v;
}

function toBody(fields: Field[], values: Row, creating: boolean): Row {
  const body: Row = {};
  for (const f of fields) {
    if (f.createOnly && !creating) continue;
    const v = values[f.name];
    if (f.kind === "password" && !v) continue;
    if (f.optional && (v === "" || v === null)) continue;
    if (f.kind === "number") body[f.name] = Number(v);
    else body[f.name] = v;
  }
  return body;
}

function FieldInput({
  f,
  value,
  set,
  lookups,
  placeholder,
}: {
  f: Field;
  value: unknown;
  set: (v: unknown) => void;
  lookups: Lookups;
  placeholder?: string;
}) {
  const { t } = useI18n();
  const id = `f-${f.name}`;
  switch (f.kind) {
    case "textarea":
      return <textarea id={id} rows={5} value={str(value)} onChange={(e) => set(e.target.value)} />;
    case "number":
      return <input id={id} type="number" value={str(value)} onChange={(e) => set(e.target.value)} />;
    case "bool":
      return <input id={id} type="checkbox" checked={!!value} onChange={(e) => set(e.target.checked)} />;
    case "password":
      return (
        <input
          id={id}
          type="password"
          autoComplete="new-password"
          placeholder={placeholder}
          value={str(value)}
          onChange={(e) => set(e.target.value)}
        />
      );
    case "file":
      return <input id={id} type="file" onChange={(e) => set(e.target.files?.[0] ?? null)} />;
    case "datetime":
      return (
        <DateTimeInput value={str(value)} onChange={set} fromDays={-30} toDays={365} testId={id} label={t(f.label)} />
      );
    case "list":
      return (
        <textarea
          id={id}
          rows={3}
          value={(value as string[]).join("\n")}
          onChange={(e) => set(e.target.value.split("\n").map((x) => x.trim()).filter(Boolean))}
        />
      );
    case "select":
      return (
        <select id={id} value={str(value)} onChange={(e) => set(e.target.value)}>
          {!(f.options?.(lookups, t) ?? []).some((o) => o.value === "") && <option value="">—</option>}
          {(f.options?.(lookups, t) ?? []).map((o) => (
            <option key={o.value} value={o.value}>{o.label}</option>
          ))}
        </select>
      );
    case "multi": {
      const chosen = new Set(value as string[]);
      return (
        <div className="checks" id={id}>
          {(f.options?.(lookups, t) ?? []).map((o) => (
            <label key={o.value} className="check">
              <input
                type="checkbox"
                checked={chosen.has(o.value)}
                onChange={(e) => {
                  const n = new Set(chosen);
                  if (e.target.checked) n.add(o.value);
                  else n.delete(o.value);
                  set([...n]);
                }}
              />
              {o.label}
            </label>
          ))}
        </div>
      );
    }
    default:
      return <input id={id} value={str(value)} onChange={(e) => set(e.target.value)} />;
  }
}

const initialQuery = (s: Section): Query =>
  Object.fromEntries((s.filters ?? []).filter((f) => f.initial).map((f) => [f.name, f.initial!]));

/** One section: its rows (filtered, paged), its form, its notices — and nothing else's. */
function SectionView({ section, ctx, lookups }: { section: Section; ctx: Ctx; lookups: Lookups }) {
  const { t } = ctx;
  const [rows, setRows] = useState<Row[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [query, setQuery] = useState<Query>(() => initialQuery(section));
  const [editing, setEditing] = useState<Row | "new" | null>(null);
  const [values, setValues] = useState<Row>({});
  const [notice, setNotice] = useState("");
  const [removing, setRemoving] = useState<Row | null>(null); // asking whether to delete it
  // the answer of the last read only: an earlier one that comes late is dropped
  const generation = useRef(0);

  const load = useCallback(
    async (more: string | null = null) => {
      const gen = ++generation.current;
      setLoading(true);
      try {
        const page = await section.load(query, more);
        if (gen !== generation.current) return;
        setRows((old) => (more ? [...old, ...page.rows] : page.rows));
        setNext(page.next);
        if (section.single && page.rows[0] && !more) {
          setEditing(page.rows[0]);
          setValues(Object.fromEntries(section.fields.map((f) => [f.name, toForm(f, page.rows[0][f.name])])));
        }
      } catch (e) {
        if (gen === generation.current) setNotice(errorText(e, t));
      } finally {
        if (gen === generation.current) setLoading(false);
      }
    },
    [section, query, t],
  );

  useEffect(() => {
    void load();
    return () => {
      generation.current++; // gone: nothing read before may land here
    };
  }, [load]);

  // pushes that change the shown rows in place (others' presence coming and going)
  useEffect(() => {
    const patch = section.live;
    if (!patch) return;
    return live.on((e) => setRows((rs) => patch(rs, e) ?? rs));
  }, [section]);

  useEffect(() => {
    if (!section.refreshS || next) return;
    const timer = window.setInterval(() => void load(), section.refreshS * 1000);
    return () => window.clearInterval(timer);
  }, [section, load, next]);

  const open = (r: Row | "new") => {
    setEditing(r);
    setValues(
      Object.fromEntries(
        section.fields.map((f) => [f.name, r === "new" ? blank(f) : toForm(f, f.from ? f.from(r) : r[f.name])]),
      ),
    );
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const creating = editing === "new";
    try {
      const body = toBody(section.fields, values, creating);
      const out = creating ? await section.create!(body) : await section.update!(editing as Row, body);
      const temp = (out as { temporary_password?: string } | undefined)?.temporary_password;
      setNotice(temp ? t("admin.temporary", { p: temp }) : t("common.saved"));
      if (!section.single) setEditing(null);
      await load();
    } catch (err) {
      setNotice(errorText(err, t));
    }
  };

  // a stored row as it is; the form of a new row; or (edited) a stored row's form
  const runTest = async (row: Row | null, edited = false) => {
    setNotice(t("admin.testing"));
    try {
      const body = row && !edited ? null : toBody(section.fields, values, !row);
      const out = row && edited ? await section.testEdit!(row, body!) : await section.test!(body, row);
      setNotice(t(out.ok ? "admin.test_ok" : "admin.test_failed", { d: out.detail, ms: out.elapsed_ms }));
    } catch (e) {
      setNotice(errorText(e, t));
    }
  };

  // asked first in the app's own dialog (translated; Esc or Cancel keeps the row)
  const remove = async (r: Row) => {
    setRemoving(null);
    try {
      await section.remove!(r);
      await load();
    } catch (e) {
      setNotice(errorText(e, t));
    }
  };

  const question = t(section.removeLabel ? "admin.confirm" : "admin.confirm_delete");
  const csv = section.csv && ctx.may(section.csv.permission) ? section.csv.href(query) : null;
  return (
    <main className="page" data-testid="admin-section" data-section={section.key}>
      <div className="row gap">
        <h1>{t(section.title)}</h1>
        <span className="spacer" />
        {csv && (
          <a className="button" href={csv} download data-testid="admin-csv">{t("admin.csv")}</a>
        )}
        {(section.create || section.editor) && !section.single && !section.editOnly && (
          <button className="primary" onClick={() => open("new")} data-testid="admin-new">{t("admin.new")}</button>
        )}
      </div>
      {section.help && <p className="muted small">{t(section.help)}</p>}
      {notice && <p className="notice" role="status" data-testid="admin-notice">{notice}</p>}
      {editing &&
        section.editor?.(editing, lookups, (saved) => {
          setEditing(null);
          if (saved) {
            setNotice(t("common.saved"));
            void load();
          }
        })}
      {editing && !section.editor && (
        <form className="card form" onSubmit={submit} data-testid="admin-form">
          {section.fields
            .filter((f) => editing === "new" || !f.createOnly)
            .map((f) => (
              <div key={f.name} className="field">
                <label htmlFor={`f-${f.name}`}>{t(f.label)}</label>
                <FieldInput
                  f={f}
                  value={values[f.name]}
                  set={(v) => setValues((old) => ({ ...old, [f.name]: v }))}
                  lookups={lookups}
                  placeholder={f.keepHint && editing !== "new" ? t(f.keepHint) : undefined}
                />
                {f.words && (
                  <WordPicker
                    target={`f-${f.name}`}
                    value={str(values[f.name])}
                    set={(v) => setValues((old) => ({ ...old, [f.name]: v }))}
                  />
                )}
              </div>
            ))}
          <div className="actions">
            {!section.single && <button type="button" onClick={() => setEditing(null)}>{t("common.cancel")}</button>}
            {section.test && editing === "new" && (
              <button type="button" onClick={() => void runTest(null)} data-testid="admin-test">{t("admin.test")}</button>
            )}
            {section.testEdit && editing !== "new" && (
              <button type="button" onClick={() => void runTest(editing as Row, true)} data-testid="admin-test">{t("admin.test")}</button>
            )}
            <button className="primary" type="submit" data-testid="admin-save">{t("common.save")}</button>
          </div>
        </form>
      )}
      {!section.single && (
        <AdminTable
          section={section}
          rows={rows}
          loading={loading}
          next={next}
          more={() => void load(next)}
          query={query}
          setQuery={setQuery}
          lookups={lookups}
          actions={(r) => (
            <>
              {(section.update || section.editor) && (
                <button className="small" onClick={() => open(r)} data-testid="admin-edit">{t("admin.edit")}</button>
              )}
              {section.remove && (!section.removable || section.removable(r)) && (
                <button className="small" onClick={() => setRemoving(r)} data-testid="admin-remove">
                  {t(section.removeLabel ?? "admin.delete")}
                </button>
              )}
              {section.actions?.(r, ctx, setNotice, () => void load())}
              {section.test && (
                <button className="small" onClick={() => void runTest(r)} data-testid="admin-test-row">{t("admin.test")}</button>
              )}
            </>
          )}
        />
      )}
      {removing && (
        <Dialog label={question} testId="admin-remove-dialog" onClose={() => setRemoving(null)}>
          <h2>{question}</h2>
          <div className="actions">
            <button onClick={() => setRemoving(null)} autoFocus data-testid="admin-remove-cancel">{t("common.cancel")}</button>
            <button className="danger" onClick={() => void remove(removing)} data-testid="admin-remove-confirm">
              {t(section.removeLabel ?? "admin.delete")}
            </button>
          </div>
        </Dialog>
      )}
    </main>
  );
}

function allSections(ctx: Ctx): { title: Key; sections: Section[] }[] {
  return [
    { title: "admin.group.settings", sections: [...settingsSections(ctx), ...approvalSections(ctx), ...lookupSections(ctx), ...channelSections(ctx)] },
    { title: "routing.group", sections: routingSections(ctx) },
    { title: "admin.group.records", sections: logSections(ctx) },
  ];
}

export function Admin({ section, session }: { section: string; session: Session }) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const ctx: Ctx = useMemo(
    () => ({ t, dateTime: (v: unknown) => dateTime(v ? String(v) : null), may: session.may }),
    [t, dateTime, session.may],
  );
  const groups = useMemo(() => allSections(ctx), [ctx]);
  const allowed = groups.flatMap((g) => g.sections).filter((s) => session.may(s.permission));
  const current = allowed.find((s) => s.key === section) ?? allowed[0];
  const [lookups, setLookups] = useState<Lookups>({
    inboxes: [],
    operators: [],
    roles: [],
    permissions: [],
    folders: [],
    templates: [],
  });

  useEffect(() => {
    const opt = (r: Row[], v: string, l: string) => r.map((x) => ({ value: str(x[v]), label: str(x[l]) }));
    void Promise.allSettled([
      items("/inboxes", session.may("manage_inboxes") ? { all: "true" } : undefined),
      items("/operators"),
      items("/roles"),
      items("/permissions"),
      items("/template-folders"),
      items("/templates"),
    ]).then(([i, o, r, p, f, tp]) => {
      const v = (x: PromiseSettledResult<Row[]>) => (x.status === "fulfilled" ? x.value : []);
      setLookups({
        inboxes: opt(v(i), "id", "name"),
        operators: opt(v(o), "id", "display_name"),
        roles: opt(v(r), "name", "name"),
        permissions: opt(v(p), "name", "name"),
        folders: opt(v(f), "id", "name"),
        templates: opt(v(tp), "id", "name"),
      });
    });
  }, [session]);

  if (!current) return <main className="page"><p className="muted">{t("admin.none")}</p></main>;

  return (
    <div className="admin-screen" data-testid="admin">
      <nav className="side" aria-label={t("nav.admin")}>
        <h2>{t("nav.admin")}</h2>
        {groups.map((g) => (
          <div key={g.title} className="navgroup">
            <h3 className="muted small">{t(g.title)}</h3>
            {g.sections.map((s) =>
              session.may(s.permission) ? (
                <a key={s.key} href={`#/admin/${s.key}`} className={s.key === current.key ? "current" : ""} data-testid={`admin-${s.key}`}>
                  {t(s.title)}
                </a>
              ) : (
                <span key={s.key} className="disabled navitem" title={t("admin.needs", { p: permissionLabel(s.permission, t) })}>
                  {t(s.title)}
                </span>
              ),
            )}
          </div>
        ))}
      </nav>
      {current.page ? (
        <main className="page" data-testid="admin-section" data-section={current.key} key={current.key}>
          {current.page(ctx, lookups)}
        </main>
      ) : (
        <SectionView key={current.key} section={current} ctx={ctx} lookups={lookups} />
      )}
    </div>
  );
}

export function mayAdminister(session: Session): boolean {
  const ctx: Ctx = { t: (k) => k, dateTime: () => "", may: session.may };
  return allSections(ctx).some((g) => g.sections.some((s) => session.may(s.permission)));
}
