import { ReactNode } from "react";
import { DateTimeInput } from "./DateTimeInput";
import { Filter, Lookups, Query, Row, Section } from "./adminTypes";
import { useI18n } from "./i18n";

// One section's rows: the filters above, the table, "more" when the API has another page,
// and the CSV download where the API has one. It shows only the rows it is given;
// Admin.tsx keeps one SectionView per section (keyed by it), so a section's table never
// holds the rows of the section shown before (issue 16, item 1).

function FilterInput({
  f,
  value,
  set,
  lookups,
}: {
  f: Filter;
  value: string;
  set: (v: string) => void;
  lookups: Lookups;
}) {
  const { t } = useI18n();
  const id = `filter-${f.name}`;
  if (f.kind === "bool")
    return (
      <label className="check">
        <input id={id} type="checkbox" checked={value === "true"} onChange={(e) => set(e.target.checked ? "true" : "")} />
        {t(f.label)}
      </label>
    );
  let input: ReactNode;
  if (f.kind === "select")
    input = (
      <select id={id} value={value} onChange={(e) => set(e.target.value)}>
        {(f.options?.(lookups, t) ?? []).map((o) => (
          <option key={o.value} value={o.value}>{o.label}</option>
        ))}
      </select>
    );
  else if (f.kind === "day_from" || f.kind === "day_to")
    input = (
      <DateTimeInput
        value={value}
        onChange={set}
        fromDays={-365}
        toDays={0}
        dayOnly={f.kind === "day_from" ? "start" : "end"}
        testId={id}
        label={t(f.label)}
      />
    );
  else input = <input id={id} type="search" size={14} value={value} onChange={(e) => set(e.target.value)} />;
  return (
    <label className="filter">
      {t(f.label)} {input}
    </label>
  );
}

export function AdminTable({
  section,
  rows,
  loading,
  next,
  more,
  query,
  setQuery,
  lookups,
  actions,
}: {
  section: Section;
  rows: Row[];
  loading: boolean;
  next: string | null;
  more: () => void;
  query: Query;
  setQuery: (q: Query) => void;
  lookups: Lookups;
  actions: (r: Row) => ReactNode;
}) {
  const { t } = useI18n();
  return (
    <>
      {section.filters && (
        <div className="filters" data-testid="admin-filters">
          {section.filters.map((f) => (
            <FilterInput
              key={f.name}
              f={f}
              value={query[f.name] ?? ""}
              set={(v) => setQuery({ ...query, [f.name]: v })}
              lookups={lookups}
            />
          ))}
        </div>
      )}
      <table className="table" data-testid="admin-table" data-section={section.key}>
        <thead>
          <tr>
            {section.columns.map((c) => (
              <th key={c.label}>{t(c.label)}</th>
            ))}
            <th />
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={section.id(r)} data-testid="admin-row">
              {section.columns.map((c) => (
                <td key={c.label} className={c.mono ? "mono" : undefined}>{c.value(r, lookups)}</td>
              ))}
              <td className="nowrap">{actions(r)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {loading && <p className="muted">{t("list.loading")}</p>}
      {!loading && rows.length === 0 && (
        <p className="muted" data-testid="admin-empty">{t("admin.empty")}</p>
      )}
      {next && !loading && (
        <button onClick={more} data-testid="admin-more">{t("list.more")}</button>
      )}
    </>
  );
}
