import { lazy, Suspense, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { api, ApiError, Inbox, Me, Notice, setCsrf, whenLoggedOut } from "./api";
import { I18n, initialLang, Lang, translate, Key } from "./i18n";
import { live } from "./live";
import { Login, PasswordChange } from "./Login";
import { InboxView } from "./InboxView";
import { TicketView } from "./TicketView";
import { ContactView } from "./Contacts";
import { CONTACT_TABS, ContactsScreen } from "./ContactsScreen";
import { Campaigns } from "./Campaigns";
import { Admin, mayAdminister } from "./Admin";
import { Dialog, shortcutKey } from "./Dialog";
import { ApprovalQueue } from "./Approvals";
import { ApprovalView } from "./ApprovalView";
import { useApprovalCount } from "./approvalTypes";
import { Notifications } from "./Notifications";
import { PresenceSwitch } from "./Presence";

// the Reports section and the Exports screen, with the charting library, load when opened
const ReportsScreen = lazy(() => import("./Reports").then((m) => ({ default: m.ReportsScreen })));

// Screens live in the URL fragment: #/inbox/<id|all>/<tab>[/<view>], #/tickets/<id>,
// #/reports/<report>, #/exports, #/contacts/<lists|segments|fields>[/<id>],
// #/campaigns[/<id|new>[/edit]].
// The view of a list is whose tickets: "" everyone's, "mine", "unassigned", or an
// operator's id.
export interface Route {
  screen: "inbox" | "ticket" | "contacts" | "contact" | "admin" | "approvals" | "approval" | "reports" | "campaigns";
  inbox: string;
  tab: string;
  view?: string;
  id?: string;
}

function parseHash(): Route {
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  const base = { inbox: "all", tab: "open" };
  if (parts[0] === "tickets" && parts[1]) return { ...base, screen: "ticket", id: parts[1] };
  if (parts[0] === "contacts" && CONTACT_TABS.has(parts[1])) return { ...base, screen: "contacts", tab: parts[1], id: parts[2] || "" };
  if (parts[0] === "contacts") return parts[1] ? { ...base, screen: "contact", id: parts[1] } : { ...base, screen: "contacts", tab: "" };
  if (parts[0] === "campaigns") return { ...base, screen: "campaigns", id: parts[1] || "", view: parts[2] || "" };
  if (parts[0] === "reports") return { ...base, screen: "reports", id: parts[1] || "" };
  if (parts[0] === "exports") return { ...base, screen: "reports", id: "exports" };
  if (parts[0] === "admin") return { ...base, screen: "admin", id: parts[1] || "" };
  if (parts[0] === "approvals") return parts[1] ? { ...base, screen: "approval", id: parts[1] } : { ...base, screen: "approvals" };
  return { screen: "inbox", inbox: parts[1] || "all", tab: parts[2] || "open", view: parts[3] || "" };
}

export function go(path: string): void {
  location.hash = path;
}

export interface Session {
  me: Me;
  inboxes: Inbox[];
  may: (permission: string) => boolean;
}

export function App() {
  const [lang, setLang] = useState<Lang>(initialLang);
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [inboxes, setInboxes] = useState<Inbox[]>([]);
  const [notices, setNotices] = useState<Notice[]>([]);
  const [route, setRoute] = useState<Route>(parseHash);
  const [liveUp, setLiveUp] = useState(false);
  const [help, setHelp] = useState(false);

  const helpShown = useRef(false);
  helpShown.current = help;
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== "?") return;
      // ? opens the help when nothing else is open, and closes it again (as Esc does,
      // Dialog.tsx); under another dialog it does nothing
      if (helpShown.current ? (e.target as HTMLElement).closest("[data-testid=keys-help]") : shortcutKey(e)) {
        setHelp((h) => !h);
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  const tz = me?.time_zone || Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const i18n = useMemo(
    () => ({ lang, tz, t: (k: Key, v?: Record<string, string | number>) => translate(lang, k, v) }),
    [lang, tz],
  );

  useEffect(() => {
    document.documentElement.lang = lang;
    localStorage.setItem("sb.lang", lang);
  }, [lang]);

  useEffect(() => {
    const f = () => setRoute(parseHash());
    window.addEventListener("hashchange", f);
    return () => window.removeEventListener("hashchange", f);
  }, []);

  const loadMe = useCallback(async () => {
    try {
      const m = await api.get<Me>("/me");
      setMe(m);
      if (m.language === "ja" || m.language === "en") {
        if (!localStorage.getItem("sb.lang")) setLang(m.language);
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) setMe(null);
      else setMe(null);
    }
  }, []);

  useEffect(() => {
    whenLoggedOut(() => setMe(null));
    void loadMe();
  }, [loadMe]);

  const ready = !!me && !me.password_change_required;
  useEffect(() => {
    if (!ready) return;
    void api.get<{ items: Inbox[] }>("/inboxes").then((r) => setInboxes(r.items));
    void api.get<{ items: Notice[] }>("/notices").then((r) => {
      const seen = new Set(JSON.parse(sessionStorage.getItem("sb.notices") || "[]") as string[]);
      setNotices(r.items.filter((n) => !seen.has(n.id)));
    }).catch(() => {});
    live.start();
    const off = live.onState(setLiveUp);
    // who we are changed (roles, inboxes, settings): re-read it; denied: whatever /me says now
    const offChanged = live.on((e) => {
      if (e.type !== "access.changed") return;
      void loadMe();
      void api.get<{ items: Inbox[] }>("/inboxes").then((r) => setInboxes(r.items));
    });
    const offDenied = live.onDenied(() => void loadMe());
    // an inbox's settings the screens read from the list (its survey, issue 20) may change
    // meanwhile: the list is read again when this app saved one (`sb:inboxes`) and when the
    // tab comes back into view, at most once a minute
    let readAt = Date.now();
    const reread = (e: Event) => {
      if (e.type !== "sb:inboxes" && (document.hidden || Date.now() - readAt < 60_000)) return;
      readAt = Date.now();
      void api.get<{ items: Inbox[] }>("/inboxes").then((r) => setInboxes(r.items)).catch(() => {});
    };
    window.addEventListener("sb:inboxes", reread);
    document.addEventListener("visibilitychange", reread);
    return () => {
      window.removeEventListener("sb:inboxes", reread);
      document.removeEventListener("visibilitychange", reread);
      off();
      offChanged();
      offDenied();
      live.stop();
    };
  }, [ready, loadMe]);

  const logout = async () => {
    try {
      await api.del("/sessions/current");
    } catch {
      /* the session may be gone already */
    }
    setCsrf(null);
    setMe(null);
  };

  const noticesSeen = () => {
    const seen = JSON.parse(sessionStorage.getItem("sb.notices") || "[]") as string[];
    sessionStorage.setItem("sb.notices", JSON.stringify([...seen, ...notices.map((n) => n.id)]));
    setNotices([]);
  };

  // the approval queue's count in the navigation, for who may approve (issue 17)
  const mayApprove = !!me?.permissions.includes("approve") && ready;
  const approvalCount = useApprovalCount(mayApprove);

  const session: Session | null = useMemo(
    () => (me ? { me, inboxes, may: (p: string) => me.permissions.includes(p) } : null),
    [me, inboxes],
  );

  const toggle = (
    <button className="link" onClick={() => setLang(lang === "en" ? "ja" : "en")} data-testid="lang">
      {i18n.t("lang.toggle")}
    </button>
  );

  let body;
  if (me === undefined) body = <div className="center muted">{i18n.t("list.loading")}</div>;
  else if (me === null) body = <Login onDone={loadMe} toggle={toggle} />;
  else if (me.password_change_required)
    body = <PasswordChange reason={me.password_change_required} onDone={loadMe} toggle={toggle} />;
  else
    body = (
      <div className="app">
        <header className="top">
          <a className="brand" href="#/inbox/all/open">{i18n.t("app.name")}</a>
          <a href="#/inbox/all/open" className={route.screen === "inbox" || route.screen === "ticket" ? "nav current" : "nav"} data-testid="nav-inboxes">
            {i18n.t("nav.inboxes")}
          </a>
          <a href="#/contacts" className={route.screen.startsWith("contact") ? "nav current" : "nav"} data-testid="nav-contacts">
            {i18n.t("nav.contacts")}
          </a>
          {session?.may("manage_outreach") && (
            <a href="#/campaigns" className={route.screen === "campaigns" ? "nav current" : "nav"} data-testid="nav-campaigns">
              {i18n.t("nav.campaigns")}
            </a>
          )}
          {mayApprove && (
            <a href="#/approvals" className={route.screen.startsWith("approval") ? "nav current" : "nav"} data-testid="nav-approvals">
              {i18n.t("nav.approvals")}{" "}
              <span className={approvalCount > 0 ? "navcount due" : "navcount"} data-testid="approval-count">{approvalCount}</span>
            </a>
          )}
          {session?.may("see_reports") && (
            <a href="#/reports" className={route.screen === "reports" && route.id !== "exports" ? "nav current" : "nav"} data-testid="nav-reports">
              {i18n.t("nav.reports")}
            </a>
          )}
          {session?.may("export") && (
            <a href="#/exports" className={route.screen === "reports" && route.id === "exports" ? "nav current" : "nav"} data-testid="nav-exports">
              {i18n.t("nav.exports")}
            </a>
          )}
          {session && mayAdminister(session) ? (
            <a href="#/admin" className={route.screen === "admin" ? "nav current" : "nav"} data-testid="nav-admin">
              {i18n.t("nav.admin")}
            </a>
          ) : (
            <span className="nav disabled" title={i18n.t("admin.none")} data-testid="nav-admin">{i18n.t("nav.admin")}</span>
          )}
          <span className={liveUp ? "live up" : "live down"} data-testid="live-state">
            {liveUp ? i18n.t("nav.live") : i18n.t("nav.offline")}
          </span>
          <span className="spacer" />
          <PresenceSwitch me={session?.me.id ?? ""} />
          <button className="link" title={i18n.t("keys.help")} aria-label={i18n.t("keys.title")} onClick={() => setHelp(true)} data-testid="keys">
            ?
          </button>
          {toggle}
          <span data-testid="me">{me.display_name}</span>
          <button className="link" onClick={logout} data-testid="logout">{i18n.t("nav.logout")}</button>
        </header>
        {route.screen === "ticket" && route.id ? (
          <TicketView key={route.id} id={route.id} session={session!} />
        ) : route.screen === "contacts" ? (
          <ContactsScreen tab={route.tab} id={route.id ?? ""} session={session!} />
        ) : route.screen === "campaigns" && session!.may("manage_outreach") ? (
          <Campaigns id={route.id ?? ""} view={route.view ?? ""} session={session!} />
        ) : route.screen === "contact" && route.id ? (
          <ContactView key={route.id} id={route.id} masked={!session!.may("see_customer_addresses")} />
        ) : route.screen === "approvals" ? (
          <ApprovalQueue session={session!} />
        ) : route.screen === "approval" && route.id ? (
          <ApprovalView key={route.id} id={route.id} session={session!} />
        ) : route.screen === "reports" ? (
          <Suspense fallback={<main className="page muted">{i18n.t("list.loading")}</main>}>
            <ReportsScreen section={route.id ?? ""} session={session!} />
          </Suspense>
        ) : route.screen === "admin" ? (
          <Admin section={route.id ?? ""} session={session!} />
        ) : (
          <InboxView route={route} session={session!} />
        )}
        <Notifications />
        {help && (
          <Dialog label={i18n.t("keys.title")} testId="keys-help" onClose={() => setHelp(false)}>
            <h2>{i18n.t("keys.title")}</h2>
            <ul>
              {i18n.t("keys.help").split(" · ").map((k) => (
                <li key={k}>{k}</li>
              ))}
            </ul>
            <div className="actions">
              <button className="primary" onClick={() => setHelp(false)} autoFocus data-testid="keys-close">
                {i18n.t("common.close")}
              </button>
            </div>
          </Dialog>
        )}
        {notices.length > 0 && (
          // read once: OK and Esc both mark them seen; a click beside them does not
          <Dialog label={i18n.t("notices.title")} testId="notices" onClose={noticesSeen} backdropCloses={false}>
            <h2>{i18n.t("notices.title")}</h2>
            {notices.map((n) => (
              <section key={n.id}>
                <h3>{n.title}</h3>
                <p className="pre">{n.body}</p>
              </section>
            ))}
            <div className="actions">
              <button className="primary" onClick={noticesSeen} data-testid="notices-ok">
                {i18n.t("notices.ok")}
              </button>
            </div>
          </Dialog>
        )}
      </div>
    );
  return <I18n.Provider value={i18n}>{body}</I18n.Provider>;
}
