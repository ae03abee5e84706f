// The one way the app talks to the gateway: the documented /api/v1 (gateway/openapi.yaml).
// The session is the HttpOnly `sb_session` cookie; state-changing requests carry the
// session's CSRF token, kept in localStorage from the login answer.

const CSRF_KEY = "sb.csrf";

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public field?: string,
    public body?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export function setCsrf(token: string | null): void {
  if (token) localStorage.setItem(CSRF_KEY, token);
  else localStorage.removeItem(CSRF_KEY);
}

type Query = Record<string, string | number | boolean | undefined | null>;

function url(path: string, query?: Query): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return `/api/v1${path}${s ? `?${s}` : ""}`;
}

let onUnauthenticated: () => void = () => {};
export function whenLoggedOut(f: () => void): void {
  onUnauthenticated = f;
}
/** The session ended elsewhere (the live socket was closed for it): back to the login. */
export function loggedOut(): void {
  onUnauthenticated();
}

async function request<T>(method: string, path: string, body?: unknown, query?: Query): Promise<T> {
  const headers: Record<string, string> = {};
  let payload: BodyInit | undefined;
  if (body instanceof Blob) {
    payload = body;
    headers["Content-Type"] = body.type || "application/octet-stream";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  if (method !== "GET") headers["X-CSRF-Token"] = localStorage.getItem(CSRF_KEY) ?? "";
  let res: Response;
  try {
    res = await fetch(url(path, query), { method, headers, body: payload, credentials: "same-origin" });
  } catch {
    throw new ApiError(0, "network", "network");
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const err: Record<string, unknown> = {
      ...((data as { error?: Record<string, unknown> } | null)?.error ?? {}),
      retry_after_s: res.headers.get("Retry-After"),
    };
    const e = new ApiError(
      res.status,
      String(err.code ?? "http_error"),
      String(err.message ?? res.statusText),
      err.field as string | undefined,
      err,
    );
    if (res.status === 401 && path !== "/sessions") onUnauthenticated();
    throw e;
  }
  return data as T;
}

export const api = {
  get: <T>(path: string, query?: Query) => request<T>("GET", path, undefined, query),
  post: <T>(path: string, body?: unknown, query?: Query) => request<T>("POST", path, body, query),
  put: <T>(path: string, body?: unknown) => request<T>("PUT", path, body),
  patch: <T>(path: string, body?: unknown) => request<T>("PATCH", path, body),
  del: <T>(path: string, query?: Query) => request<T>("DELETE", path, undefined, query),
};

// ---- the shapes the app reads (schemas of gateway/openapi.yaml) ----------------------

export type Status = "open" | "pending" | "resolved" | "no_action" | "trash";
export const STATUSES: Status[] = ["open", "pending", "resolved", "no_action", "trash"];
export type Priority = "low" | "normal" | "high" | "urgent";
export const PRIORITIES: Priority[] = ["low", "normal", "high", "urgent"];

export interface Me {
  id: string;
  tenant_id: string;
  login: string;
  display_name: string;
  roles: string[];
  permissions: string[];
  inbox_ids: string[];
  all_inboxes: boolean;
  language?: string;
  time_zone?: string;
  password_change_required?: "temporary_password" | "password_expired" | null;
}

export interface OperatorRef {
  id: string;
  name: string;
}
export interface Address {
  name: string;
  address: string;
}
export interface ReplyLock {
  holder: OperatorRef;
  fence: number;
  expires_at: string;
  acquired_at: string | null;
}
export interface Ticket {
  id: string;
  subject: string;
  status: Status;
  inbox: { id: string; name: string };
  from: Address;
  received_at: string;
  updated_at: string;
  assignee: OperatorRef | null;
  number: number;
  priority: Priority | null;
  category: string | null;
  labels: string[];
  flags: string[];
  contact_id: string | null;
  merged_into: string | null;
  last_message_at: string;
  message_count: number;
  lock: ReplyLock | null;
  editing: boolean;
  awaiting_approval: boolean;
  elapsed_seconds?: number;
  elapsed_level?: number;
  elapsed_color?: string | null;
  sla_due_at?: string | null; // the next SLA due time while a clock runs (issue 18)
  // issue 18, second part (absent from a server without them)
  pending_until?: string | null; // a pending ticket's date: rules on "pending date reached" run then
  language?: string | null; // detected from the first customer mail (ISO 639-1)
  required_skills?: { name: string; min_level: number }[];
  customer_value?: number | null; // the contact's
  priority_score?: number | null; // at the time of the answer
  priority_score_since?: string | null; // the score is the minutes since this
}
export interface MessageSummary {
  id: string;
  message_id?: string; // a mail's Message-ID header
  channel: string;
  received_at: string;
  subject?: string;
  from?: Address;
  to?: Address[];
  snippet?: string;
  has_attachments?: boolean;
  auto_submitted?: boolean;
  parse_problems?: string[];
  // ADR 0009: the sender was not a participant of the ticket (joined through our signed id)
  stranger?: boolean;
  // true/false: whether a trusted host vouches for the From address; null: our own mail
  sender_verified?: boolean | null;
  sender_auth?: { method: string; authserv_id: string } | null;
  body?: string;
  caller_name?: string;
  phone?: string;
  direction?: string;
  duration_s?: number;
  author?: OperatorRef | null;
}
export interface Comment {
  id: string;
  author: OperatorRef;
  body: string;
  mentions: OperatorRef[];
  created_at: string;
}
export type TimelineEntry =
  | { type: "mail"; at: string; message: MessageSummary }
  | { type: "phone_memo"; at: string; message: MessageSummary }
  | { type: "comment"; at: string; comment: Comment };

export interface TicketDetail extends Ticket {
  messages: MessageSummary[];
  comments: Comment[];
  timeline: TimelineEntry[];
  actions: Record<string, boolean>;
}
export interface Inbox {
  id: string;
  name: string;
  addresses: string[];
  plain_text_only?: boolean; // replies are plain text only (CMP-5)
  survey_enabled?: boolean; // satisfaction surveys on (OUT-5): "resolve without survey" is offered
}
export interface Counts {
  inbox_id: string;
  open: number;
  pending: number;
  resolved: number;
  no_action: number;
  trash: number;
  editing: number;
  awaiting_approval: number;
}
export interface Attachment {
  index?: number;
  id?: string;
  filename: string;
  content_type: string;
  size: number;
  download_url: string;
  inline?: boolean; // a draft's: an image inside the HTML (cid:), not listed as a file
  content_id?: string | null;
}
export interface ParsedMail {
  subject: string;
  from: Address[] | Address | null;
  to: Address[];
  cc: Address[];
  text: string;
  html: string | null;
  remote_images: number;
  inline_images?: Record<string, number>;
  attachments: Attachment[];
  defects: string[];
  auto_submitted: boolean;
  virus_scan?: VirusScan | null;
}
// ING-5: what the virus scanner found in the attachments (null: nothing was scanned).
export interface VirusScan {
  state: "clean" | "infected" | "not_scanned";
  findings: { index: number; filename: string; signature: string }[];
  scanned_at: string | null;
  error: string | null;
}
export interface Template {
  id: string;
  kind: "template" | "phrase";
  folder_id: string | null;
  name: string;
  subject: string;
  body_text: string;
  keywords: string[];
}
export interface Folder {
  id: string;
  parent_id: string | null;
  name: string;
  template_count: number;
}
export interface DraftRevision {
  revision: number;
  from_address: string;
  from_name: string;
  to: string[];
  cc: string[];
  bcc: string[];
  subject: string;
  body_text: string;
  body_html: string;
  signature_text: string;
  signature_html?: string; // the signature in an HTML mail (edited as text: "")
  quote_text: string;
  include_quote: boolean;
  attachments: Attachment[];
}
export interface Draft {
  id: string;
  ticket_id: string | null;
  inbox_id: string;
  kind: string;
  state: string;
  author?: OperatorRef;
  current: DraftRevision;
  // who changed it last and how (created, saved, reopened)
  last_change?: { by: OperatorRef; at: string; action: string } | null;
}
export interface Finding {
  code: string;
  severity: "blocking" | "warning";
  message: string;
  field: string | null;
  detail: string | null;
}
export interface Checks {
  blocked: boolean;
  findings: Finding[];
}
/** The mail a draft will become: what the customer's mail program shows, and its source. */
export interface Preview {
  from: Address;
  to: Address[];
  cc: Address[];
  subject: string;
  date: string | null; // an example (the time the preview was built)
  headers: { name: string; value: string }[];
  text: string;
  html: string | null;
  attachments: Attachment[];
  bcc: string[];
  size_bytes: number;
  source: string | null; // null: the caller may not see customers' addresses
  source_truncated: boolean;
}
export interface Send {
  id: string;
  state: string;
  subject: string;
  recipients: string[];
  send_at: string | null;
  sent_at: string | null;
  next_attempt_at: string | null;
  attempts: number;
  last_reply: { code: number | null; message: string } | null;
  status_after: Status | null;
  operator: OperatorRef | null;
  message_id?: string; // the Message-ID of the mail as sent (a timeline message's message_id)
  bounce?: string | null; // why it did not reach the customer (a DSN's statuses, a channel's error)
  draft_id?: string | null; // the draft it was sent from (its approval rounds, issue 17)
}
export interface Notice {
  id: string;
  title: string;
  body: string;
}
export interface OperatorBrief {
  id: string;
  login: string;
  display_name: string;
}

export interface Contact {
  id: string;
  name: string;
  addresses: string[];
  phones: string[];
  company: string;
  memo: string;
  custom: Record<string, string>;
  ticket_count: number;
  merged_into: string | null;
  customer_value?: number | null; // 0…1,000,000, added to the priority score (issue 18)
  vip?: boolean;
}
export interface TimelineItem {
  type: "ticket_opened" | "mail" | "phone_memo" | "comment";
  ticket_id: string;
  at: string;
  ticket?: Ticket;
  message?: MessageSummary;
  comment?: Comment;
}
