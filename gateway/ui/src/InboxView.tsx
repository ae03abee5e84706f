import { ChannelIcon, ticketChannel } from "./channels";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { shortcutKey } from "./Dialog";
import { useVirtualizer } from "@tanstack/react-virtual";
import { api, Counts, OperatorBrief, PRIORITIES, Status, STATUSES, Ticket } from "./api";
import { Route, Session, go } from "./App";
import { errorText } from "./errors";
import { useFormat } from "./format";
import { elapsed, useI18n } from "./i18n";
import { live, LiveEvent } from "./live";
import { SlaCell } from "./Sla";
import { surveyed, WithoutSurvey } from "./adminSurvey";
import { scoreAt } from "./TicketRouting";

const TABS = ["open", "pending", "resolved", "no_action", "trash", "editing", "awaiting_approval"] as const;
type Tab = (typeof TABS)[number];
const COLUMNS = ["number", "subject", "customer", "status", "priority", "score", "sla", "assignee", "labels", "received_at", "elapsed"] as const;
type Column = (typeof COLUMNS)[number];
// the API's sort key of each sortable column (elapsed is the age: received_at reversed)
const SORT_OF: Partial<Record<Column, string>> = {
  number: "number",
  subject: "subject",
  customer: "customer",
  status: "status",
  priority: "priority",
  score: "priority_score",
  sla: "sla_due_at",
  assignee: "assignee",
  received_at: "received_at",
  elapsed: "received_at",
};
interface Threshold {
  after_minutes: number;
  color: string;
}
// whose tickets a list shows (the URL's view): everyone's, the caller's, nobody's
const VIEWS = ["", "mine", "unassigned"] as const;
const SEARCH_DELAY_MS = 400;
const PAGE = 200;
const MAX_ROWS = 20000;
const ROW_HEIGHT = 38;

function tabQuery(tab: Tab): Record<string, string> {
  if (tab === "editing" || tab === "awaiting_approval") return { view: tab };
  return { status: tab };
}

function inTab(t: Ticket, tab: Tab): boolean {
  if (tab === "editing") return t.status !== "trash" && t.editing;
  if (tab === "awaiting_approval") return t.status !== "trash" && t.awaiting_approval;
  return t.status === tab;
}

function sortValue(t: Ticket, sort: string): string | number {
  switch (sort) {
    case "number":
      return t.number;
    case "subject":
      return t.subject.toLowerCase();
    case "customer":
      return (t.from.name || t.from.address).toLowerCase();
    case "assignee":
      return (t.assignee?.name ?? "").toLowerCase();
    case "status":
      return t.status;
    case "priority":
      return PRIORITIES.indexOf(t.priority ?? "normal");
    case "priority_score":
      return scoreAt(t, Date.now()) ?? -1;
    case "sla_due_at":
      // soonest first; none running sorts last when ascending (as the server sorts)
      return t.sla_due_at ?? "9999";
    default:
      return t.received_at;
  }
}

export function compareTickets(a: Ticket, b: Ticket, sort: string, asc: boolean): number {
  const va = sortValue(a, sort);
  const vb = sortValue(b, sort);
  const c = va < vb ? -1 : va > vb ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  return asc ? c : -c;
}

export function InboxView({ route, session }: { route: Route; session: Session }) {
  const { t } = useI18n();
  const { dateTime, lang } = useFormat();
  const tab = (TABS as readonly string[]).includes(route.tab) ? (route.tab as Tab) : "open";
  const inbox = route.inbox;
  const view = route.view ?? "";
  const listPath = (i: string, tb: string, v: string) => `#/inbox/${i}/${tb}${v ? `/${v}` : ""}`;
  const [rows, setRows] = useState<Ticket[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState("");
  const [counts, setCounts] = useState<Counts[]>([]);
  const [q, setQ] = useState("");
  const [query, setQuery] = useState("");
  const [label, setLabel] = useState("");
  const [sort, setSort] = useState<{ col: Column; key: string; asc: boolean }>({
    col: "received_at",
    key: "received_at",
    asc: false,
  });
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [noSurvey, setNoSurvey] = useState(false); // "resolve without survey" on a bulk resolve
  const [cursor, setCursor] = useState(0);
  const [notice, setNotice] = useState("");
  const [now, setNow] = useState(Date.now());
  const [operators, setOperators] = useState<OperatorBrief[]>([]);
  // each inbox's elapsed-time thresholds (TKT-14), so colours follow the clock and
  // rows that arrive live are coloured too
  const [thresholds, setThresholds] = useState<Record<string, Threshold[]>>({});
  const scroller = useRef<HTMLDivElement>(null);
  const search = useRef<HTMLInputElement>(null);
  const generation = useRef(0);

  useEffect(() => {
    sessionStorage.setItem("sb.lastList", location.hash || "#/inbox/all/open");
  }, [inbox, tab, view]);

  // the search runs as the operator types (a moment after the last key), or at Enter
  useEffect(() => {
    const h = window.setTimeout(() => setQuery(q.trim()), SEARCH_DELAY_MS);
    return () => window.clearTimeout(h);
  }, [q]);

  useEffect(() => {
    const id = window.setInterval(() => setNow(Date.now()), 30000);
    return () => window.clearInterval(id);
  }, []);

  useEffect(() => {
    void api.get<{ items: OperatorBrief[] }>("/operators").then((r) => setOperators(r.items)).catch(() => {});
  }, []);

  useEffect(() => {
    for (const i of session.inboxes) {
      void api
        .get<{ thresholds: Threshold[] }>(`/inboxes/${i.id}/settings`)
        .then((r) => setThresholds((old) => ({ ...old, [i.id]: r.thresholds })))
        .catch(() => {});
    }
  }, [session.inboxes]);

  const filters = useMemo(() => {
    const f: Record<string, string> = { ...tabQuery(tab), sort: sort.key, order: sort.asc ? "asc" : "desc" };
    if (inbox !== "all") f.inbox = inbox;
    if (query) f.q = query;
    if (view) f.assignee = view === "mine" ? session.me.id : view === "unassigned" ? "none" : view;
    if (label) f.label = label;
    return f;
  }, [tab, inbox, query, view, label, sort, session.me.id]);

  const loadCounts = useCallback(async () => {
    try {
      setCounts((await api.get<{ items: Counts[] }>("/ticket-counts")).items);
    } catch {
      /* counts are a courtesy; the list shows its own errors */
    }
  }, []);

  // One live event applied to the rows: they change in place, enter or leave this tab.
  const applyEvent = useCallback(
    (rs: Ticket[], e: LiveEvent): Ticket[] => {
      if (e.type.startsWith("lock.")) {
        const id = e.ticket_id as string;
        const lock = (e.lock as Ticket["lock"]) ?? null;
        return rs.map((r) => (r.id === id ? { ...r, lock, editing: lock !== null || r.editing } : r));
      }
      if (e.type === "ticket.left") return rs.filter((r) => r.id !== e.ticket_id); // to an inbox not ours
      const ticket = e.ticket as Ticket | undefined;
      if (!ticket || !e.type.startsWith("ticket.")) return rs;
      const i = rs.findIndex((r) => r.id === ticket.id);
      const merged = i >= 0 ? { ...rs[i], ...ticket } : ticket;
      const belongs =
        inTab(merged, tab) &&
        !merged.merged_into &&
        (inbox === "all" || merged.inbox.id === inbox) &&
        (!filters.assignee || merged.assignee?.id === filters.assignee || (filters.assignee === "none" && !merged.assignee)) &&
        (!label || merged.labels.includes(label)) &&
        !query; // a keyword search is re-run by hand, not guessed here
      if (i >= 0) {
        if (belongs) return rs.map((r, k) => (k === i ? merged : r));
        return rs.filter((_, k) => k !== i);
      }
      if (!belongs) return rs;
      const out = [...rs, merged];
      out.sort((a, b) => compareTickets(a, b, sort.key, sort.asc));
      return out;
    },
    [tab, inbox, filters.assignee, label, query, sort],
  );

  // Live events that arrive while the list is being read are applied again on top of
  // every page read: a page read before a ticket arrived must not drop it.
  const duringLoad = useRef<LiveEvent[] | null>(null);

  const load = useCallback(async () => {
    const gen = ++generation.current;
    duringLoad.current = [];
    setLoading(true);
    setError("");
    let all: Ticket[] = [];
    let next: string | null = null;
    try {
      do {
        const page: { items: Ticket[]; next: string | null } = await api.get("/tickets", {
          ...filters,
          limit: PAGE,
          cursor: next,
        });
        if (gen !== generation.current) return;
        all = all.concat(page.items);
        setRows((duringLoad.current ?? []).reduce(applyEvent, all));
        setLoading(false);
        next = page.next;
      } while (next && all.length < MAX_ROWS);
    } catch (e) {
      if (gen !== generation.current) return;
      setError(errorText(e, t));
      setLoading(false);
    } finally {
      if (gen === generation.current) duringLoad.current = null;
    }
  }, [filters, applyEvent, t]);

  useEffect(() => {
    setSelected(new Set());
    setCursor(0);
    void load();
  }, [load]);

  useEffect(() => {
    void loadCounts();
  }, [loadCounts]);

  // live: rows change in place, enter or leave this tab; the counts are re-read (at most
  // every 500 ms); after a reconnect everything is re-read.
  const countTimer = useRef<number | undefined>(undefined);
  useEffect(() => {
    const refreshCounts = () => {
      if (countTimer.current !== undefined) return;
      countTimer.current = window.setTimeout(() => {
        countTimer.current = undefined;
        void loadCounts();
      }, 500);
    };
    const offState = live.onState((up) => {
      if (up) {
        void load();
        void loadCounts();
      }
    });
    const off = live.on((e: LiveEvent) => {
      if (e.type === "access.changed") {
        // what the operator may see changed: the list and counts are re-read
        void load();
        void loadCounts();
        return;
      }
      const rowEvent = e.type.startsWith("lock.") || e.type.startsWith("ticket.");
      if (!rowEvent) return;
      refreshCounts();
      duringLoad.current?.push(e);
      setRows((rs) => applyEvent(rs, e));
    });
    return () => {
      off();
      offState();
    };
  }, [applyEvent, load, loadCounts]);

  const virt = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
  });

  const countFor = (tabName: Tab): number => {
    const list = inbox === "all" ? counts : counts.filter((c) => c.inbox_id === inbox);
    return list.reduce((n, c) => n + (c[tabName] ?? 0), 0);
  };
  const inboxOpen = (id: string) => counts.find((c) => c.inbox_id === id)?.open ?? 0;

  const toggleSort = (col: Column) => {
    const key = SORT_OF[col];
    if (!key) return;
    if (sort.col === col) setSort({ col, key, asc: !sort.asc });
    // the oldest first is the longest waiting; the soonest SLA due time first is the most urgent
    else setSort({ col, key, asc: col === "elapsed" || col === "sla" });
  };

  // a selected ticket's inbox with surveys on: "resolve without survey" is offered
  const selectedSurveyed =
    selected.size > 0 && surveyed(session.inboxes, rows.filter((r) => selected.has(r.id)).map((r) => r.inbox.id));

  const bulk = async (change: Record<string, unknown>) => {
    const ids = [...selected];
    if (change.status === "resolved" && noSurvey && selectedSurveyed) change = { ...change, without_survey: true };
    try {
      const r = await api.post<{ ok: number; failed: number }>("/tickets/bulk", { ticket_ids: ids, change });
      setNotice(t("bulk.done", { ok: r.ok, failed: r.failed }));
      setSelected(new Set());
      setNoSurvey(false);
    } catch (e) {
      setNotice(errorText(e, t));
    }
  };

  const onKey = (e: KeyboardEvent) => {
    if (!shortcutKey(e)) return; // not in a field, nor behind an open dialog
    if (e.key === "j" || e.key === "ArrowDown") {
      e.preventDefault();
      setCursor((c) => {
        const n = Math.min(rows.length - 1, c + 1);
        virt.scrollToIndex(n);
        return n;
      });
    } else if (e.key === "k" || e.key === "ArrowUp") {
      e.preventDefault();
      setCursor((c) => {
        const n = Math.max(0, c - 1);
        virt.scrollToIndex(n);
        return n;
      });
    } else if (e.key === "Enter" && rows[cursor]) {
      go(`/tickets/${rows[cursor].id}`);
    } else if (e.key === "x" && rows[cursor]) {
      const id = rows[cursor].id;
      setSelected((s) => {
        const n = new Set(s);
        if (n.has(id)) n.delete(id);
        else n.add(id);
        return n;
      });
    } else if (e.key === "/") {
      e.preventDefault();
      search.current?.focus();
    }
  };

  // the list's keys work wherever the focus is on this screen (not in a field)
  const keyHandler = useRef(onKey);
  keyHandler.current = onKey;
  useEffect(() => {
    const f = (e: KeyboardEvent) => keyHandler.current(e);
    window.addEventListener("keydown", f);
    return () => window.removeEventListener("keydown", f);
  }, []);

  const sortMark = (col: Column) => {
    if (sort.col !== col) return "";
    const up = col === "elapsed" ? !sort.asc : sort.asc;
    return up ? " ▲" : " ▼";
  };

  const colourOf = (r: Ticket, secs: number): string | null => {
    const own = thresholds[r.inbox.id];
    if (!own) return r.elapsed_color ?? null;
    let colour: string | null = null;
    for (const th of own) if (secs >= th.after_minutes * 60) colour = th.color;
    return colour;
  };

  const visibleInboxes = session.inboxes;

  return (
    <div className="inbox-screen" tabIndex={-1} data-testid="inbox-screen">
      <nav className="side" aria-label={t("nav.inboxes")}>
        <h2>{t("nav.inboxes")}</h2>
        <a className={inbox === "all" ? "current" : ""} href={listPath("all", tab, view)} data-testid="inbox-all">
          {t("nav.all")}
        </a>
        {visibleInboxes.map((i) => (
          <a key={i.id} className={inbox === i.id ? "current" : ""} href={listPath(i.id, tab, view)} data-testid="inbox-link">
            <span>{i.name}</span>
            <span className="count">{inboxOpen(i.id)}</span>
          </a>
        ))}
        <h2>{t("nav.views")}</h2>
        {VIEWS.map((v) => (
          <a key={v} className={view === v ? "current" : ""} href={listPath(inbox, tab, v)} data-testid={`view-${v || "everyone"}`}>
            {t(`view.${v || "everyone"}`)}
          </a>
        ))}
      </nav>
      <main className="list">
        <div className="tabs" role="tablist">
          {TABS.map((name) => (
            <a
              key={name}
              role="tab"
              aria-selected={tab === name}
              className={tab === name ? "tab current" : "tab"}
              href={listPath(inbox, name, view)}
              data-testid={`tab-${name}`}
            >
              {t(`tab.${name}`)} <span className="count" data-testid={`count-${name}`}>{countFor(name)}</span>
            </a>
          ))}
        </div>
        <div className="toolbar">
          <form
            onSubmit={(e) => {
              e.preventDefault();
              setQuery(q.trim());
            }}
          >
            <input
              ref={search}
              type="search"
              placeholder={t(session.may("see_customer_addresses") ? "list.search" : "list.search_masked")}
              title={t("list.search_hint")}
              value={q}
              onChange={(e) => setQ(e.target.value)}
              data-testid="search"
            />
          </form>
          <label>
            {t("list.filter.assignee")}{" "}
            <select value={view} onChange={(e) => go(listPath(inbox, tab, e.target.value).slice(1))} data-testid="filter-assignee">
              <option value="">{t("list.filter.anyone")}</option>
              <option value="mine">{t("list.filter.me")}</option>
              <option value="unassigned">{t("list.filter.none")}</option>
              {operators.map((o) => (
                <option key={o.id} value={o.id}>{o.display_name}</option>
              ))}
            </select>
          </label>
          <label>
            {t("list.filter.label")} <input value={label} onChange={(e) => setLabel(e.target.value.trim())} size={10} data-testid="filter-label" />
          </label>
          <span className="spacer" />
          <span className="muted" data-testid="row-count">{t("list.count", { n: rows.length })}</span>
        </div>
        {selected.size > 0 && (
          <div className="bulkbar" data-testid="bulkbar">
            <span>{t("list.selected", { n: selected.size })}</span>
            <select
              value=""
              onChange={(e) => e.target.value && void bulk({ status: e.target.value })}
              data-testid="bulk-status"
            >
              <option value="">{t("bulk.status")}</option>
              {STATUSES.map((s: Status) => (
                <option key={s} value={s}>{t(`status.${s}`)}</option>
              ))}
            </select>
            {selectedSurveyed && <WithoutSurvey checked={noSurvey} set={setNoSurvey} />}
            <button onClick={() => void bulk({ assignee_id: session.me.id })}>{t("bulk.assign_me")}</button>
          </div>
        )}
        {notice && (
          <div className="notice" role="status" onClick={() => setNotice("")}>{notice}</div>
        )}
        <div className="grid head" role="row">
          <span>
            <input
              type="checkbox"
              aria-label={t("list.select_all")}
              checked={rows.length > 0 && selected.size === rows.length}
              onChange={(e) => setSelected(e.target.checked ? new Set(rows.map((r) => r.id)) : new Set())}
            />
          </span>
          {COLUMNS.map((c) => (
            <button key={c} className="colhead" onClick={() => toggleSort(c)} disabled={!SORT_OF[c]} data-testid={`sort-${c}`}>
              {t(`col.${c}`)}
              {sortMark(c)}
            </button>
          ))}
        </div>
        <div className="rows" ref={scroller} data-testid="rows">
          {error && <p className="error" role="alert">{error}</p>}
          {!error && loading && rows.length === 0 && <p className="muted pad">{t("list.loading")}</p>}
          {!error && !loading && rows.length === 0 && <p className="muted pad" data-testid="empty">{t("list.empty")}</p>}
          <div style={{ height: virt.getTotalSize(), position: "relative" }}>
            {virt.getVirtualItems().map((v) => {
              const r = rows[v.index];
              const secs = Math.max(0, Math.floor((now - Date.parse(r.received_at)) / 1000));
              return (
                <div
                  key={r.id}
                  className={`grid row${v.index === cursor ? " cursor" : ""}${selected.has(r.id) ? " selected" : ""}`}
                  style={{ transform: `translateY(${v.start}px)`, height: ROW_HEIGHT }}
                  data-testid="ticket-row"
                  data-ticket={r.id}
                  onClick={() => go(`/tickets/${r.id}`)}
                >
                  <span onClick={(e) => e.stopPropagation()}>
                    <input
                      type="checkbox"
                      aria-label={`select #${r.number}`}
                      checked={selected.has(r.id)}
                      onChange={(e) =>
                        setSelected((s) => {
                          const n = new Set(s);
                          if (e.target.checked) n.add(r.id);
                          else n.delete(r.id);
                          return n;
                        })
                      }
                    />
                  </span>
                  <span className="num">{r.number}</span>
                  <span className="subject">
                    <ChannelIcon kind={ticketChannel(r.from)} />{" "}
                    <a href={`#/tickets/${r.id}`} onClick={(e) => e.stopPropagation()}>{r.subject}</a>
                    {r.lock && (
                      <span className="badge lock" data-testid="lock-badge">
                        {r.lock.holder.id === session.me.id ? t("lock.you") : t("lock.replying", { name: r.lock.holder.name })}
                      </span>
                    )}
                    {r.awaiting_approval && <span className="badge appr-pending" data-testid="approval-badge">{t("appr.awaiting")}</span>}
                    {inbox === "all" && <span className="muted small"> · {r.inbox.name}</span>}
                  </span>
                  <span className="customer" title={r.from.address}>{r.from.name || r.from.address}</span>
                  <span data-testid="cell-status">
                    <span className={`badge status-${r.status}`}>{t(`status.${r.status}`)}</span>
                  </span>
                  <span data-testid="cell-priority" className={`priority-${r.priority ?? "normal"}`}>
                    {t(`priority.${r.priority ?? "normal"}`)}
                  </span>
                  <span className="score" data-testid="cell-score">{scoreAt(r, now)?.toLocaleString(lang) ?? ""}</span>
                  <SlaCell dueAt={r.sla_due_at} now={now} />
                  <span data-testid="cell-assignee">{r.assignee?.name ?? ""}</span>
                  <span>{r.labels.map((l) => <span key={l} className="badge">{l}</span>)}</span>
                  <span data-testid="cell-received">{dateTime(r.received_at)}</span>
                  <span className="elapsed" style={colourOf(r, secs) ? { background: colourOf(r, secs)! } : undefined} data-testid="elapsed">
                    {elapsed(secs, t)}
                  </span>
                </div>
              );
            })}
          </div>
        </div>
      </main>
    </div>
  );
}
