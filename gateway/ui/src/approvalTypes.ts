// Approval before send (issue 17): the shapes of the approval routes
// (gateway/openapi.yaml, /api/v1/approvals, /drafts/{id}/approval(s), /approval-policies)
// and the small pieces several screens share: the queue's count, live.
import { useCallback, useEffect, useState } from "react";
import { api, Draft, OperatorRef } from "./api";
import { live } from "./live";

export type ApproverKind = "operator" | "role" | "inbox_members";
export interface Approver {
  kind: ApproverKind;
  id: string;
}
export interface Stage {
  name: string;
  approvers: Approver[];
  required: number;
  deadline_minutes: number;
}
export type Verdict = "approve" | "approve_and_send" | "send_back";
export interface Decision {
  stage: number;
  approver: OperatorRef;
  verdict: Verdict;
  comment: string;
  revision: number;
  decided_at: string;
}
export type ApprovalState = "pending" | "approved" | "sent_back" | "cancelled" | "voided" | "sent";
export interface Approval {
  id: string;
  draft_id: string;
  ticket_id: string | null;
  inbox_id: string;
  subject: string;
  author: OperatorRef;
  state: ApprovalState;
  stage: number;
  stages: Stage[];
  revision: number;
  submitted_revision: number;
  note: string;
  send_at: string | null;
  status_after: string | null;
  without_survey: boolean;
  requested_at: string;
  stage_started_at: string;
  finished_at: string | null;
  finished_by: OperatorRef | null;
  late: boolean;
  decisions: Decision[];
  can_decide?: boolean;
  can_cancel?: boolean;
}
export interface DiffOp {
  op: "equal" | "insert" | "delete";
  text: string;
}
export interface DiffField {
  field: string;
  ops: DiffOp[];
}
export interface Diff {
  from_revision?: number;
  to_revision?: number;
  fields: DiffField[];
}
/** GET /approvals/{id}: the request with its draft and the diff against the author's version. */
export interface ApprovalDetail extends Approval {
  draft: Draft;
  diff: Diff;
}

export type ConditionKind =
  | "recipient_domain_not_in"
  | "words"
  | "attachment"
  | "recipients_more_than"
  | "ticket_label"
  | "ticket_priority";
export const CONDITION_KINDS: ConditionKind[] = [
  "recipient_domain_not_in",
  "words",
  "attachment",
  "recipients_more_than",
  "ticket_label",
  "ticket_priority",
];
export interface Condition {
  kind: ConditionKind;
  values: string[];
  count: number;
}
export interface Policy {
  id?: string;
  inbox_id: string | null;
  name: string;
  stages: Stage[];
  conditions: Condition[];
  skip: { kind: "operator" | "role"; id: string }[];
  allow_self_approval: boolean;
  version?: number;
  builtin?: boolean;
  updated_at?: string | null;
}
export const MAX_STAGES = 3;

/** The rounds of one draft, newest first (the author's sent-back comment, the diff after sending). */
export async function draftApprovals(draftId: string): Promise<Approval[]> {
  return (await api.get<{ approvals: Approval[] }>(`/drafts/${draftId}/approvals`)).approvals;
}

/** Refetch whenever a request changes anywhere the operator sees (the `approval.changed`
 * push), and after the live socket reconnects (nothing is replayed). */
export function useApprovalChanges(reload: () => void): void {
  useEffect(() => {
    const off = live.on((e) => {
      if (e.type === "approval.changed") reload();
    });
    const offState = live.onState((up) => {
      if (up) reload();
    });
    return () => {
      off();
      offState();
    };
  }, [reload]);
}

/** The navigation's count of requests waiting for the caller (0 without `approve`). */
export function useApprovalCount(enabled: boolean): number {
  const [count, setCount] = useState(0);
  const load = useCallback(() => {
    if (!enabled) return;
    api.get<{ count: number }>("/approvals/count").then(
      (r) => setCount(r.count),
      () => {},
    );
  }, [enabled]);
  useEffect(load, [load]);
  useApprovalChanges(load);
  return enabled ? count : 0;
}
