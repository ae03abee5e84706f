// /api/v1/live: the gateway's WebSocket of ticket events (the session cookie, same origin).
// Reconnects with back-off; after a reconnect the screens re-read what they show, because
// nothing is replayed (gateway/openapi.yaml).

export type LiveEvent = { type: string; [k: string]: unknown };
type Listener = (e: LiveEvent) => void;

export class Live {
  private ws: WebSocket | null = null;
  private listeners = new Set<Listener>();
  private stateListeners = new Set<(up: boolean) => void>();
  private retry = 0;
  private stopped = false;
  private timer: number | undefined;
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

  onState(f: (up: boolean) => void): () => void {
    this.stateListeners.add(f);
    return () => this.stateListeners.delete(f);
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
      }
      for (const f of this.listeners) f(e);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.setUp(false);
      if (this.stopped) return;
      const delay = Math.min(15000, 500 * 2 ** this.retry) * (0.5 + Math.random() / 2);
      this.retry += 1;
      this.timer = window.setTimeout(() => this.open(), delay);
    };
  }
}

export const live = new Live();
