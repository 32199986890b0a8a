// One region's connection: the SSE stream read with fetch (so the token
// goes in an Authorization header, never in a URL), resumed with `since`
// after a drop, a `reset` healed from history over the range it names,
// and long polling when the stream keeps failing while the gateway still
// answers. The indicator's state is debounced: a drop shorter than
// DEBOUNCE_MS never shows.

export const DEBOUNCE_MS = 8000;
/** Stream failures in a row after which the feed polls instead. */
const FAILURES_BEFORE_POLLING = 3;
/** How often a polling feed tries the stream again. */
const STREAM_RETRY_MS = 60000;
const POLL_WAIT = "25s";
const HISTORY_PAGE = 10000;

/** Modes a region is shown in. */
export const LIVE = "live";
export const RECONNECTING = "reconnecting";
export const POLLING = "polling";
export const SIGNED_OUT = "signed-out";

export class Feed {
  /**
   * region: {name, url} (url "" for the page's own origin);
   * token(): the bearer token now; on: {hello, snapshot, records, mode, unauthorized}.
   */
  constructor(region, token, on) {
    this.region = region;
    this.token = token;
    this.on = on;
    this.since = null;
    this.mode = RECONNECTING;
    this.shown = null;
    this.failures = 0;
    this.downSince = performance.now();
    this.stopped = false;
    this.abort = null;
    this.debounce = null;
    this.lastError = null;
    /** The last poll got no answer at all (the gateway down, not a broken stream). */
    this.unreachable = false;
  }

  url(path) {
    return `${this.region.url}${path}`;
  }

  headers(extra = {}) {
    return { Authorization: `Bearer ${this.token()}`, ...extra };
  }

  start() {
    this.setMode(RECONNECTING);
    this.loop();
  }

  stop() {
    this.stopped = true;
    if (this.abort) this.abort.abort();
    clearTimeout(this.debounce);
  }

  /** The mode changes at once; what is shown follows after the debounce when it gets worse. */
  setMode(mode) {
    this.mode = mode;
    clearTimeout(this.debounce);
    if (mode === LIVE || mode === SIGNED_OUT || this.shown === null) {
      this.show(mode === RECONNECTING && this.shown === null ? RECONNECTING : mode);
      return;
    }
    if (mode === this.shown) return;
    const waited = performance.now() - this.downSince;
    this.debounce = setTimeout(() => this.show(this.mode), Math.max(0, DEBOUNCE_MS - waited));
  }

  show(mode) {
    if (this.shown === mode) return;
    this.shown = mode;
    this.on.mode(this, mode);
  }

  async loop() {
    let backoff = 500;
    let lastStreamTry = -Infinity;
    while (!this.stopped) {
      const polling = this.failures >= FAILURES_BEFORE_POLLING;
      const tryStream = !polling || performance.now() - lastStreamTry > STREAM_RETRY_MS;
      if (tryStream) {
        lastStreamTry = performance.now();
        const ok = await this.stream();
        if (this.stopped || this.mode === SIGNED_OUT) return;
        if (ok) {
          backoff = 500;
          continue;
        }
        this.failures++;
      }
      if (this.failures >= FAILURES_BEFORE_POLLING) {
        const wasUnreachable = this.unreachable;
        const ok = await this.pollOnce();
        if (this.stopped || this.mode === SIGNED_OUT) return;
        if (ok) {
          // The gateway is back after being unreachable (a restart, not a
          // proxy that breaks streams): try the stream again at once.
          if (wasUnreachable) lastStreamTry = -Infinity;
          backoff = 500;
          continue;
        }
      }
      await sleep(backoff * (0.5 + Math.random() / 2));
      backoff = Math.min(backoff * 2, 5000);
    }
  }

  lost(error) {
    this.lastError = String(error);
    if (this.mode === LIVE || this.mode === POLLING) this.downSince = performance.now();
    if (this.mode !== RECONNECTING) this.setMode(RECONNECTING);
  }

  /** Reads the stream until it ends; true if it was live at some point. */
  async stream() {
    this.abort = new AbortController();
    const q = this.since === null ? "" : `?since=${this.since}`;
    let live = false;
    try {
      const r = await fetch(this.url(`/v1/stream${q}`), {
        headers: this.headers({ Accept: "text/event-stream" }),
        signal: this.abort.signal,
        cache: "no-store",
      });
      if (r.status === 401) {
        this.setMode(SIGNED_OUT);
        this.on.unauthorized(this, await r.text());
        return false;
      }
      if (!r.ok || !r.body) throw new Error(`stream answered ${r.status}`);
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r/g, "");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = parseEvent(block);
          if (!event) continue;
          if (!live) {
            live = true;
            this.failures = 0;
            this.setMode(LIVE);
          }
          await this.message(event.type, event.data);
        }
      }
      throw new Error("stream ended");
    } catch (e) {
      if (this.stopped) return live;
      this.lost(e);
      return live;
    }
  }

  async message(type, text) {
    let m;
    try {
      m = JSON.parse(text);
    } catch {
      return;
    }
    switch (type) {
      case "hello":
        this.on.hello(this, m);
        break;
      case "snapshot":
        this.on.snapshot(this, m.states);
        this.since = m.gseq;
        break;
      case "records":
        this.deliver(m.records);
        break;
      case "reset":
        if (m.missed_from !== undefined && m.missed_to !== undefined) {
          await this.heal(m.missed_from, m.missed_to);
        }
        break;
      case "expired":
        this.setMode(SIGNED_OUT);
        this.on.unauthorized(this, "token expired");
        break;
    }
  }

  deliver(records) {
    if (!records.length) return;
    this.on.records(this, records);
    const last = records[records.length - 1].gseq;
    if (this.since === null || last > this.since) this.since = last;
  }

  /** Reads gseqs from..=to from history, page by page, and delivers them. */
  async heal(from, to) {
    await this.history(`from_gseq=${from}&to_gseq=${to}`, (records) => this.on.records(this, records));
  }

  /** One long poll; true if the gateway answered. */
  async pollOnce() {
    const since = this.since === null ? "" : `since=${this.since}&`;
    try {
      const r = await fetch(this.url(`/v1/poll?${since}wait=${POLL_WAIT}`), {
        headers: this.headers(),
        cache: "no-store",
      });
      if (r.status === 401) {
        this.setMode(SIGNED_OUT);
        this.on.unauthorized(this, await r.text());
        return false;
      }
      if (!r.ok) throw new Error(`poll answered ${r.status}`);
      const page = await r.json();
      this.unreachable = false;
      if (this.mode !== POLLING) this.setMode(POLLING);
      if (this.since === null) {
        // First contact by polling: the current state, then what follows.
        const states = await fetch(this.url("/v1/checks"), { headers: this.headers(), cache: "no-store" });
        if (states.ok) this.on.snapshot(this, (await states.json()).states);
      }
      if (page.reset && page.reset.missed_from !== undefined) {
        await this.heal(page.reset.missed_from, page.reset.missed_to);
      } else {
        this.deliver(page.records);
      }
      this.since = page.next_since;
      return true;
    } catch (e) {
      // fetch rejects (a TypeError) when no answer came at all.
      if (e instanceof TypeError) this.unreachable = true;
      this.lost(e);
      return false;
    }
  }

  /** Every record of `query` from history (a check's backfill). */
  async history(query, onPage) {
    let cursor = "";
    for (let pages = 0; pages < 10000; pages++) {
      const r = await fetch(this.url(`/v1/history?${query}&limit=${HISTORY_PAGE}${cursor}`), {
        headers: this.headers(),
        cache: "no-store",
      });
      if (!r.ok) throw new Error(`history answered ${r.status}: ${await r.text()}`);
      const page = await r.json();
      onPage(page.records);
      if (page.next_cursor === null) return;
      cursor = `&cursor=${page.next_cursor}`;
    }
  }
}

function parseEvent(block) {
  let type = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") type = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length) return null;
  return { type, data: data.join("\n") };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
