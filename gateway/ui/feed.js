// One region's connection: the SSE stream read with fetch (so the token
// goes in an Authorization header, never in a URL), resumed with `since`
// after a drop, a `reset` healed from history over the range it names,
// and long polling when the stream keeps failing while the gateway still
// answers. The indicator's state is debounced: a drop shorter than
// DEBOUNCE_MS never shows. `since` only moves past what was delivered:
// a heal that fails ends the connection before it, so the reconnect gets
// the same reset and heals again.

export const DEBOUNCE_MS = 8000;
/** Stream failures in a row after which the feed polls instead. */
const FAILURES_BEFORE_POLLING = 3;
/** How often a polling feed tries the stream again. */
const STREAM_RETRY_MS = 60000;
/** The gateway sends a heartbeat after 15 s of silence: 45 s of nothing is a dead connection. */
const STREAM_IDLE_MS = 45000;
/** A stream that stayed up this long resets the backoff. */
const STREAM_HEALTHY_MS = 10000;
const POLL_WAIT = "25s";
const POLL_TIMEOUT_MS = 40000;
const HISTORY_TIMEOUT_MS = 60000;
const HISTORY_PAGE = 10000;

/** Modes a region is shown in. */
export const LIVE = "live";
export const RECONNECTING = "reconnecting";
export const POLLING = "polling";
export const SIGNED_OUT = "signed-out";

export class Feed {
  /**
   * region: {name, url} (url "" for the page's own origin);
   * token(): the bearer token now;
   * on: {hello, snapshot(feed, states), records(feed, records, live), restart(feed), mode, unauthorized}.
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
    /** Aborts every request of this feed when it stops. */
    this.life = new AbortController();
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

  /** A signal for one request: this feed's life, and a timeout if given. */
  signal(timeoutMs, own) {
    const signals = [this.life.signal];
    if (timeoutMs) signals.push(AbortSignal.timeout(timeoutMs));
    if (own) signals.push(own);
    return AbortSignal.any(signals);
  }

  start() {
    this.setMode(RECONNECTING);
    this.loop();
  }

  stop() {
    this.stopped = true;
    this.life.abort();
    clearTimeout(this.debounce);
  }

  /** The mode changes at once; what is shown follows after the debounce when it gets worse. */
  setMode(mode) {
    if (this.stopped) return;
    this.mode = mode;
    clearTimeout(this.debounce);
    if (mode === LIVE || mode === SIGNED_OUT || this.shown === null) {
      this.show(mode);
      return;
    }
    if (mode === this.shown) return;
    const waited = performance.now() - this.downSince;
    this.debounce = setTimeout(() => this.show(this.mode), Math.max(0, DEBOUNCE_MS - waited));
  }

  show(mode) {
    if (this.stopped || this.shown === mode) return;
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
        const { live, lasted } = await this.stream();
        if (this.stopped || this.mode === SIGNED_OUT) return;
        if (live) this.failures = 0;
        else this.failures++;
        if (lasted >= STREAM_HEALTHY_MS) backoff = 500;
        if (live && lasted >= STREAM_HEALTHY_MS) continue;
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
    if (this.stopped) return;
    this.lastError = String(error);
    if (this.mode === LIVE || this.mode === POLLING) this.downSince = performance.now();
    if (this.mode !== RECONNECTING) this.setMode(RECONNECTING);
  }

  /**
   * Reads the stream until it ends. live: a snapshot was taken (the
   * gateway answered and this feed is current); lasted: ms it stayed up.
   */
  async stream() {
    const connection = new AbortController();
    const q = this.since === null ? "" : `?since=${this.since}`;
    const opened = performance.now();
    let live = false;
    let idle = null;
    const alive = () => {
      clearTimeout(idle);
      idle = setTimeout(() => connection.abort(new Error(`no byte for ${STREAM_IDLE_MS / 1000} s`)), STREAM_IDLE_MS);
    };
    try {
      alive();
      const r = await fetch(this.url(`/v1/stream${q}`), {
        headers: this.headers({ Accept: "text/event-stream" }),
        signal: this.signal(0, connection.signal),
        cache: "no-store",
      });
      if (r.status === 401) {
        this.setMode(SIGNED_OUT);
        this.on.unauthorized(this, await r.text());
        return { live, lasted: 0 };
      }
      if (!r.ok || !r.body) throw new Error(`stream answered ${r.status}`);
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      let scanned = 0;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        alive();
        buffer += value.replace(/\r/g, "");
        let end;
        // Search only what is new (a large snapshot comes in many chunks).
        while ((end = buffer.indexOf("\n\n", Math.max(0, scanned - 1))) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          scanned = 0;
          const event = parseEvent(block);
          if (!event) continue;
          await this.message(event);
          if (this.stopped) return { live, lasted: performance.now() - opened };
          if (!live && event.type === "snapshot") {
            live = true;
            this.setMode(LIVE);
          }
        }
        scanned = buffer.length;
      }
      throw new Error("stream ended");
    } catch (e) {
      this.lost(e);
      return { live, lasted: performance.now() - opened };
    } finally {
      clearTimeout(idle);
      connection.abort();
    }
  }

  /** One event; `since` moves only once it is processed. Throws if a heal failed. */
  async message(event) {
    let m;
    try {
      m = JSON.parse(event.data);
    } catch {
      return;
    }
    switch (event.type) {
      case "hello":
        this.on.hello(this, m);
        break;
      case "snapshot":
        this.on.snapshot(this, m.states);
        // The snapshot's id is the resumption point: `since` when a
        // replay follows (its records are older than G), else G.
        this.since = event.id !== null && event.id !== "" ? Number(event.id) : m.gseq;
        this.head = m.gseq;
        break;
      case "records":
        // A replay after a reconnect (gseqs up to the snapshot's) is not news.
        this.deliver(m.records, !(m.records[0]?.gseq <= this.head));
        break;
      case "reset":
        if (m.missed_from !== undefined && m.missed_to !== undefined) {
          await this.heal(m.missed_from, m.missed_to);
        } else if (m.reason === "since_ahead") {
          // Another gateway's gseqs: start over from the snapshot.
          this.on.restart(this);
        }
        break;
      case "expired":
        this.setMode(SIGNED_OUT);
        this.on.unauthorized(this, "token expired");
        break;
    }
  }

  deliver(records, live) {
    if (this.stopped || !records.length) return;
    this.on.records(this, records, live);
    const last = records[records.length - 1].gseq;
    if (this.since === null || last > this.since) this.since = last;
  }

  /** Reads gseqs from..=to from history, page by page, and delivers them; `since` then covers `to`. */
  async heal(from, to) {
    await this.history(`from_gseq=${from}&to_gseq=${to}`, (records) => {
      if (!this.stopped) this.on.records(this, records, false);
    });
    if (this.since === null || to > this.since) this.since = to;
  }

  /** One long poll; true if the gateway answered. */
  async pollOnce() {
    try {
      if (this.since === null) {
        // First contact by polling: the current state, and its gseq as since.
        const states = await fetch(this.url("/v1/checks"), { headers: this.headers(), cache: "no-store", signal: this.signal(POLL_TIMEOUT_MS) });
        if (states.status === 401) return this.refused(states);
        if (!states.ok) throw new Error(`checks answered ${states.status}`);
        const current = await states.json();
        this.on.snapshot(this, current.states);
        this.since = current.gseq;
      }
      const r = await fetch(this.url(`/v1/poll?since=${this.since}&wait=${POLL_WAIT}`), {
        headers: this.headers(),
        cache: "no-store",
        signal: this.signal(POLL_TIMEOUT_MS),
      });
      if (r.status === 401) return this.refused(r);
      if (!r.ok) throw new Error(`poll answered ${r.status}`);
      const page = await r.json();
      this.unreachable = false;
      if (this.mode !== POLLING) this.setMode(POLLING);
      if (page.reset && page.reset.missed_from !== undefined) {
        await this.heal(page.reset.missed_from, page.reset.missed_to);
      } else if (page.reset && page.reset.reason === "since_ahead") {
        this.on.restart(this);
        this.since = null;
        return true;
      } else {
        this.deliver(page.records, true);
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

  async refused(answer) {
    this.setMode(SIGNED_OUT);
    this.on.unauthorized(this, await answer.text());
    return false;
  }

  /** Every record of `query` from history, page by page (a check's backfill, a heal). */
  async history(query, onPage, signal) {
    let cursor = "";
    for (;;) {
      const r = await fetch(this.url(`/v1/history?${query}&limit=${HISTORY_PAGE}${cursor}`), {
        headers: this.headers(),
        cache: "no-store",
        signal: signal ? AbortSignal.any([this.signal(HISTORY_TIMEOUT_MS), signal]) : this.signal(HISTORY_TIMEOUT_MS),
      });
      if (!r.ok) throw new Error(`history answered ${r.status}: ${await r.text()}`);
      const page = await r.json();
      if (this.stopped || signal?.aborted) return;
      onPage(page.records);
      if (page.next_cursor === null) return;
      cursor = `&cursor=${page.next_cursor}`;
    }
  }
}

/** One SSE event block: {type, data, id} (id null when the event had none), or null. */
export function parseEvent(block) {
  let type = "message";
  let id = null;
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") type = value;
    else if (field === "data") data.push(value);
    else if (field === "id") id = value;
  }
  if (!data.length) return null;
  return { type, data: data.join("\n"), id };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
