// /api/v1/live: the gateway's WebSocket of ticket events (the session cookie, same origin).
// Reconnects with back-off; after a reconnect the screens re-read what they show, because
// nothing is replayed (gateway/openapi.yaml). Closed with 4401 the session has ended (back
// to the login, no reconnect); with 4403 the operator may no longer have it (the app
// re-reads who it is); `access.changed` asks the screens to re-read what they show.
import { loggedOut } from "./api";

export const SESSION_ENDED = 4401;
export const ACCESS_DENIED = 4403;

export type LiveEvent = { type: string; [k: string]: unknown };
type Listener = (e: LiveEvent) => void;

export class Live {
  private ws: WebSocket | null = null;
  private listeners = new Set<Listener>();
  private stateListeners = new Set<(up: boolean) => void>();
  private deniedListeners = new Set<() => void>();
  private retry = 0;
  private stopped = false;
  private timer: number | undefined;
  // what the screens asked to be pushed (topic → the subscribe frame), sent again after a
  // reconnect: the server forgets a socket's subscriptions with it
  private subscriptions = new Map<string, Record<string, unknown>>();
  up = false;

  start(): void {
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.timer);
    this.ws?.close(1000);
    this.ws = null;
  }

  on(f: Listener): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  /** Ask for a topic's pushes (`report.live_queue`…) until the returned function is called;
   * asking again for the same topic replaces the earlier (its `inbox_id`). */
  subscribe(topic: string, extra: Record<string, unknown> = {}): () => void {
    const frame = { type: "subscribe", topic, ...extra };
    this.subscriptions.set(topic, frame);
    this.send(frame);
    return () => {
      if (this.subscriptions.get(topic) !== frame) return;
      this.subscriptions.delete(topic);
      this.send({ type: "unsubscribe", topic });
    };
  }

  /** A frame for the server now (`chat.typing`); dropped while the socket is down. */
  say(frame: Record<string, unknown>): void {
    this.send(frame);
  }

  private send(frame: Record<string, unknown>): void {
    if (this.up && this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  onState(f: (up: boolean) => void): () => void {
    this.stateListeners.add(f);
    return () => this.stateListeners.delete(f);
  }

  /** The socket was closed because the operator may no longer have it (4403). */
  onDenied(f: () => void): () => void {
    this.deniedListeners.add(f);
    return () => this.deniedListeners.delete(f);
  }

  private setUp(up: boolean): void {
    if (this.up === up) return;
    this.up = up;
    for (const f of this.stateListeners) f(up);
  }

  private open(): void {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/api/v1/live`, ["switchboard.v1"]);
    this.ws = ws;
    ws.onmessage = (m) => {
      let e: LiveEvent;
      try {
        e = JSON.parse(String(m.data));
      } catch {
        return;
      }
      if (e.type === "hello") {
        this.retry = 0;
        this.setUp(true);
        for (const frame of this.subscriptions.values()) this.send(frame);
      }
      for (const f of this.listeners) f(e);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.setUp(false);
      if (this.stopped) return;
      if (ev.code === SESSION_ENDED) {
        this.stopped = true;
        loggedOut();
        return;
      }
      if (ev.code === ACCESS_DENIED) {
        this.stopped = true;
        for (const f of this.deniedListeners) f();
        return;
      }
      const delay = Math.min(15000, 500 * 2 ** this.retry) * (0.5 + Math.random() / 2);
      this.retry += 1;
      this.timer = window.setTimeout(() => this.open(), delay);
    };
  }
}

export const live = new Live();
