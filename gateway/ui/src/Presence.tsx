import { useEffect, useRef, useState } from "react";
import { api } from "./api";
import { errorText } from "./errors";
import { Key, useI18n } from "./i18n";
import { live } from "./live";

// The operator's presence in the header (issue 18, RTE-2; PUT /api/v1/me/presence):
// online, away or offline, chosen by hand. Only operators who are online receive tickets
// automatically, so while this page is open and "online" is chosen it repeats the choice
// every HEARTBEAT_MS as the heartbeat the server asks for: an online presence nobody
// repeats for 90 s lapses to offline (a closed laptop receives nothing). Read again after
// a reconnect of the live socket (the server may have let it lapse meanwhile), and taken
// from the live `presence.changed` push of one's own change made elsewhere (another tab).

const HEARTBEAT_MS = 30_000;
const STATES = ["online", "away", "offline"] as const;
type State = (typeof STATES)[number];

interface Presence {
  status: State;
  effective: State;
  expires_at: string | null;
  updated_at?: string;
}

export function PresenceSwitch({ me }: { me: string }) {
  const { t } = useI18n();
  const [p, setP] = useState<Presence | null>(null);
  const [error, setError] = useState("");
  // presence writes go one after another, each after the last one's answer: a heartbeat
  // still on its way never lands after a later "away" and undoes it
  const writes = useRef<Promise<unknown>>(Promise.resolve());
  const chosen = useRef<State | null>(null);
  // when the presence shown was set: a push of it (or of an older one) changes nothing
  const shownAt = useRef("");
  const show = (x: Presence) => {
    shownAt.current = x.updated_at ?? shownAt.current;
    setP(x);
  };
  const write = (status: State, only?: () => boolean) => {
    const next = writes.current.then(async () => {
      if (only && !only()) return;
      try {
        show(await api.put<Presence>("/me/presence", { status }));
        setError("");
      } catch (e) {
        setError(errorText(e, t));
      }
    });
    writes.current = next;
    return next;
  };

  useEffect(() => {
    const read = () =>
      api
        .get<Presence>("/me/presence")
        .then(show)
        .catch(() => {});
    void read();
    const offState = live.onState((up) => up && void read());
    const off = live.on((e) => {
      const p = e.operator as (Presence & { operator_id: string }) | undefined;
      if (e.type !== "presence.changed" || !p || p.operator_id !== me) return;
      if (p.updated_at && shownAt.current && Date.parse(p.updated_at) <= Date.parse(shownAt.current)) return;
      chosen.current = p.status;
      show(p);
    });
    return () => {
      offState();
      off();
    };
  }, [me]);

  // the heartbeat: repeats "online" while it is the choice (also revives a lapsed one)
  const online = p?.status === "online";
  if (p && chosen.current === null) chosen.current = p.status;
  useEffect(() => {
    if (!online) return;
    const beat = () => void write("online", () => chosen.current === "online");
    if (p?.effective !== "online") void beat();
    const timer = window.setInterval(beat, HEARTBEAT_MS);
    return () => window.clearInterval(timer);
  }, [online, t]);

  if (!p) return null;
  const choose = (status: State) => {
    chosen.current = status;
    void write(status);
  };
  return (
    <label className={`presence pres-${p.effective}`} title={error || t("pres.help")} data-testid="presence" data-effective={p.effective}>
      <span className="dot" aria-hidden="true" />
      <select aria-label={t("pres.column")} value={p.status} onChange={(e) => choose(e.target.value as State)} data-testid="presence-select">
        {STATES.map((s) => (
          <option key={s} value={s}>{t(`pres.${s}` as Key)}</option>
        ))}
      </select>
      {error && <span className="error small" role="alert" data-testid="presence-error">!</span>}
    </label>
  );
}
