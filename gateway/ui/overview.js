// The overview: every check the reader may see, from every region, one
// row each: state and error class, last rt, a sparkline of recent probes,
// uptime over what this page has loaded, region and agent. Failing checks
// sort first; filters by name, region and state. Rows are virtualised:
// only those on screen exist in the DOM, so 10 000 checks cost what
// 40 rows cost to draw.

import { ST_DOWN, ST_UNKNOWN, ST_UP } from "./classify.js";
import { clock, duration, el, percent, utc } from "./format.js";

const ROW_HEIGHT = 30;
const SPARK = 60;
const OVERSCAN = 8;
const ST_CODE = { up: ST_UP, down: ST_DOWN, unknown: ST_UNKNOWN };
const ORDER = { [ST_DOWN]: 0, [ST_UNKNOWN]: 1, [ST_UP]: 2 };

/** One (region, agent, check) as the overview keeps it. */
export class Row {
  constructor(region, agent, check) {
    this.key = rowKey(region, agent, check);
    this.region = region;
    this.agent = agent;
    this.check = check;
    this.st = ST_UNKNOWN;
    this.error = null;
    this.rt = NaN;
    this.t = 0;
    this.gseq = 0;
    /** The newest gseq counted into uptime and the sparkline. */
    this.counted = 0;
    this.up = 0;
    this.total = 0;
    this.sparkRt = new Float32Array(SPARK);
    this.sparkSt = new Uint8Array(SPARK);
    this.sparkN = 0;
    this.lower = check.toLowerCase();
  }

  /**
   * Takes a snapshot state (counted false) or a record (counted true);
   * true if the row's sort position may have moved. The current state is
   * the newest gseq seen; records are counted (uptime, sparkline) once
   * each, also when they come after a snapshot that already reflects
   * them (the replay after a reconnect) or from history.
   */
  add(gseq, r, counted) {
    const st = ST_CODE[r.st] ?? ST_UNKNOWN;
    if (counted && gseq > this.counted) {
      this.counted = gseq;
      this.total++;
      if (st === ST_UP) this.up++;
      const i = this.sparkN % SPARK;
      this.sparkRt[i] = r.rt;
      this.sparkSt[i] = st;
      this.sparkN++;
    }
    if (gseq <= this.gseq) return false;
    const before = this.st;
    this.gseq = gseq;
    this.t = r.t;
    this.rt = r.rt;
    this.st = st;
    this.error = r.error ?? null;
    return before !== this.st;
  }

  /** Another gateway's gseqs from now on (since_ahead): the next state is taken whatever its gseq. */
  restart() {
    this.gseq = 0;
    this.counted = 0;
  }
}

export const rowKey = (region, agent, check) => `${region}\u0000${agent}\u0000${check}`;

export class Overview {
  constructor(root, open) {
    this.root = root;
    this.open = open;
    this.rows = new Map();
    this.order = [];
    this.dirty = true;
    this.filter = { text: "", region: "", state: "" };
    this.focus = 0;
    this.regions = new Set();
    this.build();
  }

  build() {
    this.text = el("input", { type: "search", placeholder: "Filter checks ( / )", "aria-label": "Filter by name", id: "filter" });
    this.region = el("select", { "aria-label": "Region", id: "region-filter" }, el("option", { value: "" }, "All regions"));
    this.state = el(
      "select",
      { "aria-label": "State", id: "state-filter" },
      el("option", { value: "" }, "All states"),
      el("option", { value: "failing" }, "Failing"),
      el("option", { value: "up" }, "Up"),
      el("option", { value: "down" }, "Down"),
      el("option", { value: "unknown" }, "Unknown"),
    );
    for (const input of [this.text, this.region, this.state]) {
      input.addEventListener("input", () => {
        this.filter = { text: this.text.value.trim().toLowerCase(), region: this.region.value, state: this.state.value };
        this.dirty = true;
        this.focus = 0;
        this.render();
      });
    }
    this.count = el("span", { class: "count", id: "count" });
    const head = el(
      "div",
      { class: "row head", role: "row" },
      ...["", "Check", "Region", "Agent", "Last rt", "Recent", "Uptime", "Error", "Last probe"].map((h) => el("span", { role: "columnheader" }, h)),
    );
    this.viewport = el("div", { class: "viewport", role: "rowgroup", tabindex: "0", id: "rows" });
    this.spacer = el("div", { class: "spacer" });
    this.viewport.append(this.spacer);
    this.viewport.addEventListener("scroll", () => this.render());
    this.viewport.addEventListener("keydown", (e) => this.key(e));
    this.root.append(el("div", { class: "toolbar" }, this.text, this.region, this.state, this.count), el("div", { class: "table", role: "table" }, head, this.viewport));
  }

  /** A check's row, created on first sight. */
  row(region, agent, check) {
    const k = rowKey(region, agent, check);
    let r = this.rows.get(k);
    if (!r) {
      r = new Row(region, agent, check);
      this.rows.set(k, r);
      this.dirty = true;
      if (!this.regions.has(region)) {
        this.regions.add(region);
        this.region.append(el("option", { value: region }, region));
      }
    }
    return r;
  }

  /** Records of one region (snapshot states or live records). */
  take(region, items, counted) {
    for (const item of items) {
      const r = this.row(region, item.agent, item.check);
      if (r.add(item.gseq, item.record, counted)) this.dirty = true;
    }
  }

  /** A region's gateway restarted its gseqs (since_ahead). */
  restart(region) {
    for (const r of this.rows.values()) if (r.region === region) r.restart();
  }

  visible(r) {
    const f = this.filter;
    if (f.text && !r.lower.includes(f.text) && !r.agent.toLowerCase().includes(f.text)) return false;
    if (f.region && r.region !== f.region) return false;
    if (f.state === "failing") return r.st !== ST_UP;
    if (f.state) return r.st === ST_CODE[f.state];
    return true;
  }

  sort() {
    this.order = [...this.rows.values()].filter((r) => this.visible(r));
    this.order.sort((a, b) => ORDER[a.st] - ORDER[b.st] || (a.check < b.check ? -1 : a.check > b.check ? 1 : 0) || (a.region < b.region ? -1 : 1));
    this.dirty = false;
  }

  render() {
    if (this.dirty) this.sort();
    const n = this.order.length;
    this.count.textContent = `${n} of ${this.rows.size} checks`;
    this.spacer.style.height = `${n * ROW_HEIGHT}px`;
    const top = this.viewport.scrollTop;
    const height = this.viewport.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(n, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);
    const keep = new Map();
    for (const child of [...this.viewport.children]) {
      if (child === this.spacer) continue;
      keep.set(child.dataset.key, child);
    }
    const wanted = new Set();
    for (let i = first; i < last; i++) {
      const r = this.order[i];
      wanted.add(r.key);
      let line = keep.get(r.key);
      if (!line) {
        line = this.line(r);
        this.viewport.append(line);
      }
      this.fill(line, r, i);
    }
    for (const [k, child] of keep) if (!wanted.has(k)) child.remove();
  }

  line(r) {
    const spark = el("canvas", { width: SPARK * 2, height: 20, class: "spark" });
    const line = el(
      "div",
      { class: "row", role: "row", tabindex: "-1", "data-key": r.key, "data-check": r.check, "data-region": r.region },
      el("span", { class: "dot" }),
      el("span", { class: "name" }),
      el("span", { class: "region" }),
      el("span", { class: "agent" }),
      el("span", { class: "rt num" }),
      el("span", {}, spark),
      el("span", { class: "uptime num" }),
      el("span", { class: "error" }),
      el("span", { class: "when num" }),
    );
    line.addEventListener("click", () => this.open(this.rows.get(line.dataset.key)));
    return line;
  }

  fill(line, r, i) {
    line.style.transform = `translateY(${i * ROW_HEIGHT}px)`;
    line.classList.toggle("focus", i === this.focus);
    const st = ["up", "down", "unknown"][r.st];
    if (line.dataset.st !== st) {
      line.dataset.st = st;
      line.className = `row st-${st}${i === this.focus ? " focus" : ""}`;
    }
    if (line.dataset.n === String(r.sparkN)) return;
    line.dataset.n = String(r.sparkN);
    const c = line.children;
    c[0].title = st;
    c[1].textContent = r.check;
    c[2].textContent = r.region;
    c[3].textContent = r.agent;
    c[4].textContent = duration(r.rt);
    c[6].textContent = percent(r.up, r.total);
    c[7].textContent = r.error ?? "";
    c[8].textContent = r.t ? clock(r.t) : "—";
    c[8].title = r.t ? utc(r.t) : "";
    sparkline(c[5].firstChild, r);
  }

  key(e) {
    const n = this.order.length;
    if (!n) return;
    if (e.key === "ArrowDown" || e.key === "j") this.focus = Math.min(n - 1, this.focus + 1);
    else if (e.key === "ArrowUp" || e.key === "k") this.focus = Math.max(0, this.focus - 1);
    else if (e.key === "Home") this.focus = 0;
    else if (e.key === "End") this.focus = n - 1;
    else if (e.key === "Enter") return this.open(this.order[this.focus]);
    else return;
    e.preventDefault();
    const y = this.focus * ROW_HEIGHT;
    const v = this.viewport;
    if (y < v.scrollTop) v.scrollTop = y;
    else if (y + ROW_HEIGHT > v.scrollTop + v.clientHeight) v.scrollTop = y + ROW_HEIGHT - v.clientHeight;
    this.render();
  }
}

const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

function sparkline(canvas, r) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width;
  const h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const n = Math.min(r.sparkN, SPARK);
  if (!n) return;
  let max = 0;
  for (let j = 0; j < n; j++) max = Math.max(max, r.sparkRt[j]);
  const bar = w / SPARK;
  const colors = [css("--up"), css("--down"), css("--unknown")];
  for (let j = 0; j < n; j++) {
    // Oldest first: the ring's next slot is the oldest once it is full.
    const i = r.sparkN > SPARK ? (r.sparkN + j) % SPARK : j;
    const st = r.sparkSt[i];
    const v = st === ST_UP ? Math.max(2, (r.sparkRt[i] / (max || 1)) * (h - 2)) : h;
    ctx.fillStyle = colors[st];
    // Right-aligned: the newest probe is always at the right edge.
    ctx.fillRect((SPARK - n + j) * bar, h - v, Math.max(1, bar - 1), v);
  }
}
