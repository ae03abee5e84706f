import { useCallback, useEffect, useState } from "react";
import { api, Draft } from "./api";
import { Approval, Diff, draftApprovals, useApprovalChanges } from "./approvalTypes";
import { DiffView } from "./DiffView";
import { errorText } from "./errors";
import { useFormat } from "./format";
import { Key, useI18n } from "./i18n";

// A ticket's replies in approval (issue 17): a draft awaiting approval shown read-only
// with its stage, the handover note and "Cancel request"; a draft that went out after
// approval with what the approvers changed (the diff against the author's version) and
// every decision — so the author learns from the approver's edits.

export interface DraftRounds {
  draftId: string;
  draft: Draft | null; // null: sent (the ticket lists its open and held drafts only)
  rounds: Approval[]; // newest first
}

/** The approval rounds of the ticket's drafts — those being written or held (GET
 * /tickets/{id}/drafts) and those sent (the drafts of its sends) — kept live. */
export function useTicketApprovals(ticketId: string, sentDrafts: string[]) {
  const [items, setItems] = useState<DraftRounds[]>([]);
  const sent = sentDrafts.join(",");
  const reload = useCallback(async () => {
    try {
      const drafts = (await api.get<{ items: Draft[] }>(`/tickets/${ticketId}/drafts`)).items;
      const ids = [...new Set([...drafts.map((d) => d.id), ...sent.split(",").filter(Boolean)])];
      const out = await Promise.all(
        ids.map(async (draftId) => ({
          draftId,
          draft: drafts.find((d) => d.id === draftId) ?? null,
          rounds: await draftApprovals(draftId).catch(() => [] as Approval[]),
        })),
      );
      setItems(out.filter((x) => x.rounds.length > 0 || x.draft?.state === "in_approval"));
    } catch {
      /* a courtesy beside the ticket, which shows its own errors */
    }
  }, [ticketId, sent]);
  useEffect(() => {
    void reload();
  }, [reload]);
  useApprovalChanges(reload);
  return { items, reload };
}

export function stageText(a: Approval, t: (k: Key, v?: Record<string, string | number>) => string): string {
  const name = a.stages[a.stage]?.name;
  const of = t("appr.stage_of", { n: a.stage + 1, m: a.stages.length || 1 });
  return name ? `${name} · ${of}` : of;
}

/** Who decided what, when, at which stage, with the comment; the request first. */
export function Decisions({ round }: { round: Approval }) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  return (
    <ul className="decisions" data-testid="decisions">
      <li>
        <span className="muted small">{dateTime(round.requested_at)}</span> {t("appr.requested_line", { name: round.author.name })}
        {round.note && <div className="pre small" data-testid="decision-note">{t("appr.note")}: {round.note}</div>}
      </li>
      {round.decisions.map((d, i) => (
        <li key={i} data-testid="decision" data-verdict={d.verdict}>
          <span className="muted small">{dateTime(d.decided_at)}</span> <strong>{d.approver.name}</strong>{" "}
          {t(`appr.verdict.${d.verdict}` as Key)} <span className="muted small">({t("appr.stage", { n: d.stage + 1 })})</span>
          {d.comment && <div className="pre small">{d.comment}</div>}
        </li>
      ))}
    </ul>
  );
}

function Pending({ item, round, onChanged }: { item: DraftRounds; round: Approval; onChanged: () => void }) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const [error, setError] = useState("");
  const cancel = async () => {
    try {
      await api.del(`/approvals/${round.id}`);
      onChanged();
    } catch (e) {
      setError(errorText(e, t));
    }
  };
  const r = item.draft?.current;
  return (
    <section className="card approval-state" data-testid="awaiting-approval" data-approval={round.id}>
      <div className="row gap wrap">
        <span className="badge state-scheduled">{t("appr.awaiting")}</span>
        <strong data-testid="approval-stage">{stageText(round, t)}</strong>
        {round.late && <span className="badge warn" data-testid="late">{t("appr.late")}</span>}
        <span className="muted small">{t("appr.awaiting_by", { name: round.author.name, at: dateTime(round.requested_at) })}</span>
        <span className="spacer" />
        {round.can_decide && (
          <a className="button" href={`#/approvals/${round.id}`} data-testid="open-request">{t("appr.open_request")}</a>
        )}
        {round.can_cancel && (
          <button onClick={() => void cancel()} data-testid="cancel-request">{t("appr.cancel_request")}</button>
        )}
      </div>
      {round.note && <p className="pre small">{t("appr.note")}: {round.note}</p>}
      {error && <p className="error" role="alert">{error}</p>}
      {r && (
        <details>
          <summary className="small muted">{t("appr.read_only")}</summary>
          <div className="small" data-testid="frozen-draft">
            <div>{t("reply.to")}: {r.to.join(", ")}</div>
            <div>{t("reply.subject")}: {r.subject}</div>
            <pre className="mailtext">{r.body_text}</pre>
          </div>
        </details>
      )}
    </section>
  );
}

function Finished({ round }: { round: Approval }) {
  const { t } = useI18n();
  const [diff, setDiff] = useState<Diff | null>(null);
  useEffect(() => {
    if (round.revision === round.submitted_revision) {
      setDiff({ fields: [] });
      return;
    }
    api
      .get<Diff>(`/drafts/${round.draft_id}/diff`, { from: round.submitted_revision, to: round.revision })
      .then(setDiff, () => setDiff(null));
  }, [round.draft_id, round.revision, round.submitted_revision]);
  return (
    <section className="card approval-state" data-testid="approval-result" data-state={round.state}>
      <div className="row gap">
        <span className={`badge appr-${round.state}`}>{t(`appr.state.${round.state}` as Key)}</span>
        <strong>{round.subject}</strong>
      </div>
      <h3 className="small">{t("appr.diff_title")}</h3>
      {diff && <DiffView fields={diff.fields} testId="approval-diff" />}
      <details>
        <summary className="small muted">{t("appr.history")}</summary>
        <Decisions round={round} />
      </details>
    </section>
  );
}

/** The approval state of the ticket's replies, above its timeline. */
export function TicketApprovals({ items, onChanged }: { items: DraftRounds[]; onChanged: () => void }) {
  return (
    <>
      {items.map((item) => {
        const round = item.rounds[0];
        if (!round) return null;
        if (round.state === "pending") return <Pending key={item.draftId} item={item} round={round} onChanged={onChanged} />;
        if (round.state === "sent" || round.state === "approved") return <Finished key={item.draftId} round={round} />;
        return null; // sent back, cancelled, voided: the author's editor says so
      })}
    </>
  );
}
