// One check, live: a chart with one point per probe whose tip advances
// with the clock, a phase mode (dn / cn / tl / ft / body stacked), every
// probe classified against the visible window's median (classify.js: one
// computation for the markers and the table's tints), a raw probe table
// with selection both ways, drag to zoom, a brush navigator over
// everything loaded, and CSV / JSON export. Opening a check backfills the
// last hour from history.

import uPlot from "./vendor/uplot/uPlot.esm.js";
import { AMBER, CLASS_NAMES, DOWN, OK, UNKNOWN, classes } from "./classify.js";
import { csv, download, json } from "./export.js";
import { clock, dateTime, duration, el, utc } from "./format.js";
import { PHASES, Series, ST_NAMES, errorName } from "./series.js";

const BACKFILL_MS = 3600_000;
const DEFAULT_WINDOW_MS = 15 * 60_000;
/** The most probes a view holds (about 55 h at 1 s); the oldest go first. */
const MAX_PROBES = 200_000;
/** The narrowest window a live chart shows. */
const MIN_FOLLOW_MS = 30_000;
const TABLE_ROW = 24;
const PHASE_TITLES = { dn: "DNS", cn: "TCP connect", tl: "TLS handshake", ft: "time to first byte", body: "the rest: body and close" };

const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

/** The theme's colours, read once (getComputedStyle is not free in a draw) and again when the scheme changes. */
let colors = null;
function palette() {
  colors ??= {
    cls: [css("--ok"), css("--amber"), css("--red"), css("--down"), css("--unknown")],
    phases: [css("--dn"), css("--cn"), css("--tl"), css("--ft"), css("--body")],
    fg: css("--fg"),
    fgDim: css("--fg-dim"),
    grid: css("--grid"),
    line: css("--line"),
  };
  return colors;
}
const scheme = matchMedia("(prefers-color-scheme: dark)");
scheme.addEventListener("change", () => (colors = null));

/** Timing figures the bench and the tests read (window.sonde.stats). */
export const stats = { drawFn: [], paint: [], overview: [] };
const keep = (list, v, max = 20000) => {
  list.push(v);
  if (list.length > max) list.splice(0, list.length - max);
};

export class CheckView {
  constructor(root, row, feed, onClose) {
    this.root = root;
    this.row = row;
    this.feed = feed;
    this.onClose = onClose;
    this.series = new Series(4096);
    this.cls = new Uint8Array(4096);
    this.mode = "line";
    this.follow = true;
    this.windowMs = DEFAULT_WINDOW_MS;
    this.selected = -1;
    this.selectedT = null;
    this.pending = [];
    this.drawnVersion = -1;
    this.navVersion = -1;
    this.median = NaN;
    this.lo = 0;
    this.hi = 0;
    /** Aborts this view's history reads when it closes. */
    this.life = new AbortController();
    this.build();
    this.backfill();
    this.frame = requestAnimationFrame(() => this.tick());
  }

  get meta() {
    return { region: this.row.region, agent: this.row.agent, check: this.row.check };
  }

  build() {
    const r = this.row;
    this.status = el("span", { class: "status", id: "check-status" });
    const button = (label, on, attrs = {}) => el("button", { type: "button", onclick: on, ...attrs }, label);
    this.modeButton = button("Phases", () => this.setMode(this.mode === "line" ? "phases" : "line"), { id: "mode", "aria-pressed": "false" });
    this.liveButton = button("Live", () => this.goLive(), { id: "live", "aria-pressed": "true" });
    const exportMenu = el(
      "span",
      { class: "exports" },
      button("CSV (window)", () => this.export("csv", true), { id: "export-csv-window" }),
      button("CSV (all)", () => this.export("csv", false), { id: "export-csv-all" }),
      button("JSON (window)", () => this.export("json", true), { id: "export-json-window" }),
      button("JSON (all)", () => this.export("json", false), { id: "export-json-all" }),
    );
    const back = button("← All checks", () => this.onClose(), { id: "back" });
    this.title = el("h2", { id: "check-title" }, r.check, el("small", {}, ` ${r.agent} · ${r.region}`));
    this.chartBox = el("div", { class: "chart", id: "chart" });
    this.navBox = el("div", { class: "navigator", id: "navigator" });
    this.legend = el(
      "div",
      { class: "legend" },
      ...CLASS_NAMES.map((c) => el("span", { class: `key cls-${c}` }, { ok: "normal", amber: "≥ 2× median", red: "≥ 3× median", down: "down", unknown: "unknown" }[c])),
      el("span", { class: "phase-keys" }, ...["dn", "cn", "tl", "ft", "body"].map((p) => el("span", { class: `key ph-${p}`, title: PHASE_TITLES[p] }, p))),
      el("span", { class: "median", id: "median" }),
      el("span", { class: "hint" }, "drag: zoom · double-click: live · [ ]: previous / next check · Esc: all checks"),
    );
    this.tableBody = el("div", { class: "viewport probes", id: "probes", tabindex: "0" });
    this.tableSpacer = el("div", { class: "spacer" });
    this.tableBody.append(this.tableSpacer);
    this.tableBody.addEventListener("scroll", () => this.renderTable());
    this.tableBody.addEventListener("keydown", (e) => this.tableKey(e));
    const head = el("div", { class: "probe head" }, ...["Time", "rt", "dn", "cn", "tl", "ft", "sc", "state", "error"].map((h) => el("span", {}, h)));
    this.root.append(
      el("div", { class: "toolbar" }, back, this.title, this.status, this.modeButton, this.liveButton, exportMenu),
      el("div", { class: "check-body" }, el("div", { class: "plots" }, this.chartBox, this.navBox, this.legend), el("div", { class: "table probes-table" }, head, this.tableBody)),
    );
    this.makeCharts();
    this.resize = () => this.fit();
    window.addEventListener("resize", this.resize);
    this.repaint = () => {
      this.chart.redraw(false, false);
      this.nav.redraw(false, false);
    };
    scheme.addEventListener("change", this.repaint);
  }

  makeCharts() {
    const view = this;
    const width = Math.max(300, this.chartBox.clientWidth || 800);
    // Colours as functions of the palette: a change of scheme repaints them.
    const axis = { stroke: () => palette().fgDim, grid: { stroke: () => palette().grid, width: 1 }, ticks: { stroke: () => palette().grid } };
    let down = null;
    this.chart = new uPlot(
      {
        width,
        height: 320,
        ms: 1,
        scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max) * 1.08] } },
        series: [{}, { label: "rt", stroke: css("--line"), width: 1, points: { show: false }, paths: () => null }],
        axes: [axis, { ...axis, values: (u, vals) => vals.map((v) => `${v} ms`), size: 70 }],
        legend: { show: false },
        cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
        hooks: {
          // The draw function's time, clear to last mark (stats.drawFn).
          drawClear: [() => (this.drawStarted = performance.now())],
          draw: [
            (u) => {
              this.drawMarks(u);
              keep(stats.drawFn, performance.now() - this.drawStarted);
              this.renderTable();
              // Probe end → drawn, for the live probes this draw shows.
              if (this.pending.length) {
                const painted = Date.now();
                for (const end of this.pending) keep(stats.paint, painted - end);
                this.pending.length = 0;
              }
            },
          ],
          setSelect: [
            (u) => {
              if (u.select.width < 3) return;
              const min = u.posToVal(u.select.left, "x");
              const max = u.posToVal(u.select.left + u.select.width, "x");
              u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
              this.zoom(min, max);
            },
          ],
        },
      },
      [new Float64Array(0), new Float32Array(0)],
      this.chartBox,
    );
    // The live tip holds still while the pointer is down, so a drag
    // selects what was under it, not what scrolled there since.
    this.chart.over.addEventListener("mousedown", (e) => {
      down = [e.clientX, e.clientY];
      this.held = true;
    });
    this.release = () => (this.held = false);
    window.addEventListener("mouseup", this.release);
    this.chart.over.addEventListener("click", (e) => {
      if (down && Math.hypot(e.clientX - down[0], e.clientY - down[1]) > 3) return;
      const i = this.nearest(this.chart.posToVal(e.offsetX, "x"));
      if (i >= 0) this.select(i, "chart");
    });
    this.chart.over.addEventListener("dblclick", () => this.goLive());
    this.nav = new uPlot(
      {
        width,
        height: 70,
        ms: 1,
        scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max) * 1.05] } },
        series: [{}, { stroke: () => palette().fgDim, width: 1, points: { show: false } }],
        axes: [{ ...axis, size: 24, font: "10px system-ui" }, { show: false }],
        legend: { show: false },
        cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false }, y: false },
        hooks: {
          setSelect: [
            (u) => {
              if (this.settingBrush || u.select.width < 2) return;
              this.zoom(u.posToVal(u.select.left, "x"), u.posToVal(u.select.left + u.select.width, "x"));
            },
          ],
        },
      },
      [new Float64Array(0), new Float32Array(0)],
      this.navBox,
    );
    this.nav.over.addEventListener("mousedown", () => (this.held = true));
  }

  fit() {
    const width = Math.max(300, this.chartBox.clientWidth || 800);
    this.chart.setSize({ width, height: 320 });
    this.nav.setSize({ width, height: 70 });
  }

  close() {
    this.life.abort();
    cancelAnimationFrame(this.frame);
    window.removeEventListener("resize", this.resize);
    scheme.removeEventListener("change", this.repaint);
    window.removeEventListener("mouseup", this.release);
    this.chart.destroy();
    this.nav.destroy();
    this.closed = true;
  }

  async backfill() {
    const from = Date.now() - BACKFILL_MS;
    const q = `check=${encodeURIComponent(this.row.check)}&agent=${encodeURIComponent(this.row.agent)}&from=${from}`;
    this.status.replaceChildren("loading history…");
    try {
      await this.feed.history(
        q,
        (records) => {
          for (const item of records) if (item.check === this.row.check && item.agent === this.row.agent) this.put(item, false);
        },
        this.life.signal,
      );
      if (this.closed) return;
      this.status.replaceChildren();
      this.root.dataset.loaded = "true";
    } catch (e) {
      if (this.closed) return;
      const retry = el("button", { type: "button", class: "link", id: "backfill-retry", onclick: () => this.backfill() }, "retry");
      this.status.replaceChildren(`history: ${e.message} `, retry);
      this.root.dataset.loaded = "error";
    }
  }

  /** A record of this check (live, replayed or from history). */
  put(item, live) {
    if (this.closed) return;
    const s = this.series;
    if (!s.add(item.gseq, item.record)) return;
    // Bounded: a view left open for days keeps the newest MAX_PROBES.
    if (s.length > MAX_PROBES) s.dropOldest(s.length - MAX_PROBES + (MAX_PROBES >> 4));
    if (this.cls.length < s.capacity) {
      const next = new Uint8Array(s.capacity);
      next.set(this.cls);
      this.cls = next;
    }
    if (live) {
      this.pending.push(item.record.t + item.record.rt);
      // A hidden tab draws no frames: keep the newest only.
      if (this.pending.length > 10000) this.pending.splice(0, this.pending.length - 10000);
    }
  }

  tick() {
    if (this.closed) return;
    this.frame = requestAnimationFrame(() => this.tick());
    const s = this.series;
    const changed = s.version !== this.drawnVersion;
    const navStale = s.version !== this.navVersion && !this.held;
    if (!changed && !navStale && !this.follow) return;
    if (changed) {
      this.drawnVersion = s.version;
      const data = [s.t.subarray(0, s.length), s.rt.subarray(0, s.length)];
      this.chart.setData(data, false);
      if (this.selectedT !== null) this.selected = this.indexOfT(this.selectedT);
    }
    // The navigator's scale holds still under a brush being dragged.
    if (navStale) {
      this.navVersion = s.version;
      this.nav.setData([s.t.subarray(0, s.length), s.rt.subarray(0, s.length)], true);
    }
    if (this.follow && !this.held) {
      // The last windowMs, or from the first probe held when that is later
      // (a chart opened a minute after the check started is full at once).
      // The viewer's clock, or the newest probe if its agent's clock is ahead.
      const now = Math.max(Date.now(), s.length ? s.t[s.length - 1] : 0);
      const first = s.length ? s.t[0] - 1000 : now - this.windowMs;
      const min = Math.min(now - MIN_FOLLOW_MS, Math.max(now - this.windowMs, first));
      this.chart.setScale("x", { min, max: now + 1000 });
    } else if (changed) {
      this.chart.redraw(false, false);
    }
    // The table follows in the draw hook, once the draw has its window.
    if (!this.held) this.brush();
  }

  /** The visible probes lo..hi and their classes (one computation). */
  window(u) {
    const s = this.series;
    const min = u.scales.x.min;
    const max = u.scales.x.max;
    this.lo = s.lowerBound(min);
    this.hi = s.lowerBound(Math.floor(max) + 1);
    this.median = classes(s.rt, s.st, this.lo, this.hi, this.cls);
  }

  drawMarks(u) {
    const s = this.series;
    this.window(u);
    const { lo, hi } = this;
    const pal = palette();
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    const bottom = top + height;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    // valToPos, inlined: linear scales, canvas pixels.
    const xs = u.scales.x;
    const ys = u.scales.y;
    const kx = width / (xs.max - xs.min);
    const ky = height / (ys.max - ys.min);
    const X = (t) => left + (t - xs.min) * kx;
    const Y = (v) => bottom - (v - ys.min) * ky;
    if (this.mode === "phases") {
      this.drawPhases(ctx, pal, lo, hi, X, Y, u.bbox);
    } else {
      this.drawLine(ctx, pal, lo, hi, X, Y);
      // One pass, one path per class; where probes are denser than
      // markers can be told apart, normal ones are left to the line.
      const r = Math.max(2, 3 * uPlot.pxRatio);
      const dense = hi - lo > width / 3;
      const paths = [new Path2D(), new Path2D(), new Path2D(), new Path2D(), new Path2D()];
      const cls = this.cls;
      for (let i = lo; i < hi; i++) {
        const c = cls[i];
        if (c === OK && dense) continue;
        const x = X(s.t[i]);
        const y = c >= DOWN ? bottom - r - 1 : Y(s.rt[i]);
        paths[c].moveTo(x + r, y);
        paths[c].arc(x, y, r, 0, 2 * Math.PI);
      }
      for (let c = OK; c <= UNKNOWN; c++) {
        ctx.fillStyle = pal.cls[c];
        ctx.fill(paths[c]);
      }
    }
    if (this.selected >= lo && this.selected < hi) {
      const i = this.selected;
      const x = X(s.t[i]);
      const y = this.cls[i] >= DOWN ? bottom - 6 : Y(s.rt[i]);
      ctx.strokeStyle = pal.fg;
      ctx.lineWidth = 2 * uPlot.pxRatio;
      ctx.beginPath();
      ctx.arc(x, y, 7 * uPlot.pxRatio, 0, 2 * Math.PI);
      ctx.stroke();
    }
    ctx.restore();
    const text = Number.isNaN(this.median) ? "" : `median ${duration(this.median)} over ${hi - lo} probes`;
    if (this.medianText !== text) {
      this.medianText = text;
      const m = document.getElementById("median");
      if (m) m.textContent = text;
    }
  }

  /**
   * The rt line, decimated per pixel column: each column's first, lowest,
   * highest and last probe (every spike stays visible), one pass over
   * the window and its two neighbours, nothing allocated. uPlot's own
   * line builder cost 10 ms at p95 over 86 400 probes, this about one.
   */
  drawLine(ctx, pal, lo, hi, X, Y) {
    const s = this.series;
    const from = Math.max(0, lo - 1);
    const to = Math.min(s.length, hi + 1);
    if (to - from < 2) return;
    ctx.strokeStyle = pal.line;
    ctx.lineWidth = Math.max(1, uPlot.pxRatio);
    ctx.lineJoin = "round";
    ctx.beginPath();
    let col = NaN;
    let x0 = 0;
    let first = 0;
    let low = 0;
    let high = 0;
    let last = 0;
    const flush = () => {
      ctx.lineTo(x0, first);
      if (low !== first) ctx.lineTo(x0, low);
      if (high !== low) ctx.lineTo(x0, high);
      if (last !== high) ctx.lineTo(x0, last);
    };
    for (let i = from; i < to; i++) {
      const x = X(s.t[i]);
      const y = Y(s.rt[i]);
      const c = Math.floor(x);
      if (c !== col) {
        if (col === col) flush();
        else ctx.moveTo(x, y);
        col = c;
        x0 = x;
        first = low = high = last = y;
      } else {
        // Canvas y grows downwards: the lowest rt has the largest y.
        if (y > low) low = y;
        if (y < high) high = y;
        last = y;
      }
    }
    flush();
    ctx.stroke();
  }

  /**
   * Stacked phase bars. Where probes outnumber pixel columns, one probe
   * stands for each column: the one of the worst class, then the slowest.
   */
  drawPhases(ctx, pal, lo, hi, X, Y, bbox) {
    const s = this.series;
    const cls = this.cls;
    const { left, width, top, height } = bbox;
    const bottom = top + height;
    const n = hi - lo;
    const spacing = n > 1 ? (X(s.t[hi - 1]) - X(s.t[lo])) / (n - 1) : 8;
    const barW = Math.max(1, Math.min(12 * uPlot.pxRatio, spacing * 0.8));
    const columns = new Int32Array(Math.ceil(width) + 2).fill(-1);
    for (let i = lo; i < hi; i++) {
      const col = Math.round(X(s.t[i]) - left);
      if (col < 0 || col >= columns.length) continue;
      const j = columns[col];
      if (j < 0 || cls[i] > cls[j] || (cls[i] === cls[j] && s.rt[i] > s.rt[j])) columns[col] = i;
    }
    const paths = [new Path2D(), new Path2D(), new Path2D(), new Path2D(), new Path2D()];
    const marks = [null, new Path2D(), new Path2D(), new Path2D(), new Path2D()];
    const zero = Y(0);
    const markH = 4 * uPlot.pxRatio;
    for (let col = 0; col < columns.length; col++) {
      const i = columns[col];
      if (i < 0) continue;
      const x = X(s.t[i]) - barW / 2;
      let acc = 0;
      let y0 = zero;
      let known = 0;
      for (let p = 0; p <= PHASES.length; p++) {
        let v;
        if (p < PHASES.length) {
          v = s.phase(PHASES[p], i);
          if (Number.isNaN(v)) continue;
          known += v;
        } else {
          v = s.rt[i] - known;
        }
        if (v <= 0) continue;
        acc += v;
        const y1 = Y(acc);
        paths[p].rect(x, y1, barW, y0 - y1);
        y0 = y1;
      }
      // Down, unknown and slow probes keep their class marker at the foot.
      if (cls[i] !== OK) marks[cls[i]].rect(x, bottom - markH, barW, markH);
    }
    for (let p = 0; p < paths.length; p++) {
      ctx.fillStyle = pal.phases[p];
      ctx.fill(paths[p]);
    }
    for (let c = AMBER; c <= UNKNOWN; c++) {
      ctx.fillStyle = pal.cls[c];
      ctx.fill(marks[c]);
    }
  }

  brush() {
    const s = this.series;
    if (!s.length) return;
    const min = this.chart.scales.x.min;
    const max = this.chart.scales.x.max;
    const l = this.nav.valToPos(min, "x");
    const r = this.nav.valToPos(max, "x");
    const left = Math.max(0, l);
    const width = Math.max(2, Math.min(this.nav.bbox.width / uPlot.pxRatio, r) - left);
    this.settingBrush = true;
    this.nav.setSelect({ left, width, top: 0, height: this.nav.bbox.height / uPlot.pxRatio }, false);
    this.settingBrush = false;
  }

  zoom(min, max) {
    if (!(max > min)) return;
    this.follow = false;
    this.liveButton.setAttribute("aria-pressed", "false");
    this.chart.setScale("x", { min, max });
    this.root.dataset.window = `${Math.round(min)}-${Math.round(max)}`;
  }

  goLive() {
    this.follow = true;
    this.windowMs = DEFAULT_WINDOW_MS;
    this.liveButton.setAttribute("aria-pressed", "true");
    delete this.root.dataset.window;
  }

  setMode(mode) {
    this.mode = mode;
    this.modeButton.setAttribute("aria-pressed", String(mode === "phases"));
    this.modeButton.textContent = mode === "phases" ? "Line" : "Phases";
    this.root.dataset.mode = mode;
    this.chart.redraw(true, false);
  }

  nearest(t) {
    const s = this.series;
    if (!s.length) return -1;
    const i = s.lowerBound(t);
    if (i <= 0) return 0;
    if (i >= s.length) return s.length - 1;
    return t - s.t[i - 1] < s.t[i] - t ? i - 1 : i;
  }

  indexOfT(t) {
    const i = this.series.lowerBound(t);
    return i < this.series.length && this.series.t[i] === t ? i : -1;
  }

  /** Selects probe i: highlighted in the chart and in the table, scrolled into view. */
  select(i, from) {
    this.selected = i;
    this.selectedT = this.series.t[i];
    this.root.dataset.selected = String(this.selectedT);
    if (from !== "chart" && (i < this.lo || i >= this.hi)) {
      const half = (this.chart.scales.x.max - this.chart.scales.x.min) / 2;
      this.zoom(this.selectedT - half, this.selectedT + half);
    }
    // The table scrolls to it once the draw has the window (lo..hi) it shows.
    if (from !== "table") this.scrollToT = this.selectedT;
    this.tableRendered = null;
    this.chart.redraw(false, false);
  }

  /** The visible window's probes, newest first, virtualised. */
  renderTable() {
    const s = this.series;
    const { lo, hi } = this;
    const n = Math.max(0, hi - lo);
    if (this.scrollToT !== null && this.scrollToT !== undefined) {
      const i = this.indexOfT(this.scrollToT);
      this.scrollToT = null;
      if (i >= lo && i < hi) {
        const y = (hi - 1 - i) * TABLE_ROW;
        const v = this.tableBody;
        if (y < v.scrollTop || y + TABLE_ROW > v.scrollTop + v.clientHeight) v.scrollTop = Math.max(0, y - v.clientHeight / 2);
      }
    }
    const key = `${s.version}:${lo}:${hi}:${this.tableBody.scrollTop}:${this.selected}:${this.median}`;
    if (key === this.tableRendered) return;
    this.tableRendered = key;
    this.tableSpacer.style.height = `${n * TABLE_ROW}px`;
    const top = this.tableBody.scrollTop;
    const height = this.tableBody.clientHeight || 400;
    const first = Math.max(0, Math.floor(top / TABLE_ROW) - 4);
    const last = Math.min(n, Math.ceil((top + height) / TABLE_ROW) + 4);
    // One DOM row per probe while it is on screen (keyed by t): a row
    // under the pointer keeps meaning the same probe as new ones arrive.
    const held = new Map();
    for (const line of this.tableBody.querySelectorAll(".probe")) held.set(line.dataset.t, line);
    const ph = (v) => (Number.isNaN(v) ? "—" : `${Math.round(v)}`);
    for (let pos = first; pos < last; pos++) {
      const i = hi - 1 - pos;
      const t = String(s.t[i]);
      let line = held.get(t);
      if (line) {
        held.delete(t);
      } else {
        line = el("div", { class: "probe", role: "row" }, ...Array.from({ length: 9 }, () => el("span")));
        line.dataset.t = t;
        line.addEventListener("click", () => {
          const at = this.indexOfT(Number(line.dataset.t));
          if (at >= 0) this.select(at, "table");
        });
        const c = line.children;
        c[0].textContent = clock(s.t[i]);
        c[0].title = `${dateTime(s.t[i])} (${utc(s.t[i])})`;
        c[1].textContent = `${Math.round(s.rt[i])}`;
        c[2].textContent = ph(s.phase("dn", i));
        c[3].textContent = ph(s.phase("cn", i));
        c[4].textContent = ph(s.phase("tl", i));
        c[5].textContent = ph(s.phase("ft", i));
        c[6].textContent = s.sc[i] ? String(s.sc[i]) : "—";
        c[7].textContent = ST_NAMES[s.st[i]];
        c[8].textContent = errorName(s.err[i]) ?? "";
        this.tableBody.append(line);
      }
      line.dataset.i = String(i);
      line.style.transform = `translateY(${pos * TABLE_ROW}px)`;
      const className = `probe cls-${CLASS_NAMES[this.cls[i]]}${i === this.selected ? " selected" : ""}`;
      if (line.className !== className) line.className = className;
    }
    for (const line of held.values()) line.remove();
  }

  tableKey(e) {
    if (this.selected < 0) return;
    if (e.key === "ArrowDown") this.select(Math.max(this.lo, this.selected - 1), "key");
    else if (e.key === "ArrowUp") this.select(Math.min(this.hi - 1, this.selected + 1), "key");
    else return;
    e.preventDefault();
  }

  export(kind, visible) {
    const [lo, hi] = visible ? [this.lo, this.hi] : [0, this.series.length];
    const name = `${this.row.check}-${this.row.agent}-${this.row.region}-${visible ? "window" : "all"}.${kind}`;
    const text = kind === "csv" ? csv(this.series, lo, hi, this.meta) : json(this.series, lo, hi, this.meta);
    download(name, kind === "csv" ? "text/csv" : "application/json", text);
    return text;
  }
}
