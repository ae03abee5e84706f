// The channels of tickets and messages (issue 21): which channel a ticket or a message came
// by, its icon (with an accessible name), and the shapes of the channel API
// (/api/v1/channels…, /api/v1/tickets/{id}/conversation; gateway/openapi.yaml).
import { Address, MessageSummary } from "./api";
import { Key, useI18n } from "./i18n";

export type ChannelKind = "mail" | "phone" | "chat" | "api" | "line";
export const MESSAGE_CHANNELS = new Set(["chat", "api", "line"]);

// a conversation's customer address: <conversation_id>@<kind>.channels.invalid — or, masked
// for an operator who may not see addresses, x***@c***.invalid (c: chat, a: api, l: line)
const PSEUDO = /@(chat|api|line)\.channels\.invalid$/i;
const PSEUDO_MASKED = /\*\*\*@([cal])\*\*\*\.invalid$/i;
const INITIAL: Record<string, ChannelKind> = { c: "chat", a: "api", l: "line" };

/** The channel of a customer's address (a pseudo-address), or null for a mail address. */
export function channelOfAddress(address: string | undefined): ChannelKind | null {
  if (!address) return null;
  const m = PSEUDO.exec(address);
  if (m) return m[1].toLowerCase() as ChannelKind;
  const k = PSEUDO_MASKED.exec(address);
  return k ? INITIAL[k[1].toLowerCase()] : null;
}

/** A ticket's channel, from its customer: a channel's pseudo-address, none (a phone memo
 * opened it), or a mail address. */
export function ticketChannel(from: Address | undefined): ChannelKind {
  const c = channelOfAddress(from?.address);
  if (c) return c;
  return from?.address ? "mail" : "phone";
}

/** A timeline message's channel (smtp, imap, form, import, sent are mail). */
export function messageChannel(m: MessageSummary): ChannelKind {
  if (m.channel === "phone" || MESSAGE_CHANNELS.has(m.channel)) return m.channel as ChannelKind;
  if (m.channel === "sent") return channelOfAddress(m.to?.[0]?.address) ?? "mail";
  return "mail";
}

const PATHS: Record<ChannelKind, string> = {
  mail: "M2 4h12v8H2z M2 4l6 5 6-5",
  phone: "M4 2l2 0 1 3-1.5 1a8 8 0 0 0 4.5 4.5L11 9l3 1v2a1 1 0 0 1-1 1A11 11 0 0 1 3 3a1 1 0 0 1 1-1z",
  chat: "M2 3h12v8H7l-3 3v-3H2z",
  api: "M5 3L2 8l3 5 M11 3l3 5-3 5 M9 3L7 13",
  line: "M8 2C4 2 1.5 4.5 1.5 7.2c0 2.4 2 4.4 4.8 4.9l-.3 2 2.6-1.8C12 12 14.5 10 14.5 7.2 14.5 4.5 12 2 8 2z",
};

export function ChannelIcon({ kind, testId = "channel-icon" }: { kind: ChannelKind; testId?: string }) {
  const { t } = useI18n();
  const label = t(`chan.${kind}` as Key);
  // the name is the image's (no <title>: it would join the text of the row or heading); the
  // tooltip is its wrapper's
  return (
    <span className="chan-wrap" title={label}>
      <svg
        className={`chan-icon chan-${kind}`}
        role="img"
        aria-label={label}
        viewBox="0 0 16 16"
        width="14"
        height="14"
        data-testid={testId}
        data-channel={kind}
      >
        <path d={PATHS[kind]} />
      </svg>
    </span>
  );
}

export interface ChatSettings {
  allowed_origins: string[];
  colour: string;
  greeting_ja: string;
  greeting_en: string;
  offline_form_id: string;
  position: string;
}

export interface Channel {
  id: string;
  kind: "chat" | "api" | "line";
  inbox_id: string;
  name: string;
  enabled: boolean;
  public_key: string;
  chat?: ChatSettings | null;
  api?: { webhook_url: string; reply_window_s?: number } | null;
  line?: { bot_user_id: string } | null;
  secret_hint: string;
  token_set: boolean;
  capabilities?: { reply_window_s: number } | null;
  snippet?: string;
  inbound_url?: string;
  webhook_url?: string;
  created_at?: string;
  updated_at?: string;
}

export interface Conversation {
  id: string;
  channel_id: string;
  kind: "chat" | "api" | "line";
  inbox_id: string;
  sender_name: string;
  email: string;
  ticket_id: string;
  last_inbound_at: string | null;
  ended_at: string | null;
  last_seq: number;
  capabilities?: { typing?: boolean; reply_window_s?: number } | null;
  reply_window_ends_at: string | null;
  address: string;
}

export interface Delivery {
  id: string;
  channel_id: string;
  channel_name: string;
  kind: string;
  conversation_id: string;
  ticket_id: string;
  send_id: string;
  state: "pending" | "delivered" | "dead";
  attempts: number;
  last_error: string;
  created_at: string | null;
  next_attempt_at: string | null;
  delivered_at: string | null;
}
