// Campaigns (issue 20, OUT-6), for who may manage outreach: every campaign with its state
// and progress; a new one; a campaign's page (CampaignView.tsx) and its form
// (CampaignForm.tsx). #/campaigns, #/campaigns/new, #/campaigns/<id>, #/campaigns/<id>/edit.
import { useEffect, useState } from "react";
import { api } from "./api";
import { go, Session } from "./App";
import { CampaignForm } from "./CampaignForm";
import { CampaignView, StateBadge, Progress } from "./CampaignView";
import { errorText } from "./errors";
import { useFormat } from "./format";
import { useI18n } from "./i18n";
import { Campaign, CampaignState } from "./outreachTypes";

const STATES: CampaignState[] = ["draft", "scheduled", "running", "paused", "cancelled", "completed"];
const REFRESH_MS = 3000;

function CampaignList() {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const [state, setState] = useState("");
  const [items, setItems] = useState<Campaign[] | null>(null);
  const [notice, setNotice] = useState("");

  useEffect(() => {
    let live = true;
    const load = async () => {
      try {
        const r = await api.get<{ campaigns: Campaign[] }>("/campaigns", { state });
        if (live) setItems(r.campaigns);
      } catch (e) {
        if (live) setNotice(errorText(e, t));
      }
    };
    void load();
    const h = window.setInterval(() => void load(), REFRESH_MS);
    return () => {
      live = false;
      window.clearInterval(h);
    };
  }, [state, t]);

  return (
    <main className="page" data-testid="campaigns">
      <div className="row gap">
        <h1>{t("nav.campaigns")}</h1>
        <select value={state} onChange={(e) => setState(e.target.value)} aria-label={t("camp.state")} data-testid="camp-filter">
          <option value="">{t("camp.state_any")}</option>
          {STATES.map((s) => (
            <option key={s} value={s}>{t(`camp.state.${s}`)}</option>
          ))}
        </select>
        <span className="spacer" />
        <button className="primary" onClick={() => go("/campaigns/new")} data-testid="camp-new">{t("camp.new")}</button>
      </div>
      {notice && <p className="notice" role="status">{notice}</p>}
      <table className="table" data-testid="camp-list">
        <thead>
          <tr>
            <th>{t("camp.f.name")}</th>
            <th>{t("camp.state")}</th>
            <th>{t("camp.progress")}</th>
            <th>{t("camp.f.when")}</th>
            <th>{t("out.updated_at")}</th>
          </tr>
        </thead>
        <tbody>
          {(items ?? []).map((c) => (
            <tr key={c.id} className="clickable" onClick={() => go(`/campaigns/${c.id}`)} data-testid="camp-row">
              <td>
                {/* a link as well as the row's click: reachable with the keyboard */}
                <a href={`#/campaigns/${c.id}`} onClick={(e) => e.stopPropagation()} data-testid="camp-link">{c.name}</a>
              </td>
              <td><StateBadge state={c.state} /></td>
              <td><Progress c={c} /></td>
              <td>{dateTime(c.scheduled_at)}</td>
              <td>{dateTime(c.updated_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {items?.length === 0 && <p className="muted">{t("camp.none")}</p>}
    </main>
  );
}

function EditCampaign({ id, session }: { id: string; session: Session }) {
  const { t } = useI18n();
  const [c, setC] = useState<Campaign | null>(null);
  const [notice, setNotice] = useState("");
  useEffect(() => {
    void api
      .get<Campaign>(`/campaigns/${id}`)
      .then(setC)
      .catch((e) => setNotice(errorText(e, t)));
  }, [id, t]);
  if (!c) return <main className="page muted">{notice || t("list.loading")}</main>;
  return (
    <main className="page">
      <CampaignForm campaign={c} session={session} />
    </main>
  );
}

export function Campaigns({ id, view, session }: { id: string; view: string; session: Session }) {
  if (id === "new")
    return (
      <main className="page">
        <CampaignForm campaign={null} session={session} />
      </main>
    );
  if (id && view === "edit") return <EditCampaign key={id} id={id} session={session} />;
  if (id) return <CampaignView key={id} id={id} session={session} />;
  return <CampaignList />;
}
