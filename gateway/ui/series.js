// One check's probes, held in typed arrays in order of t: 40 bytes a probe
// (t and gseq as f64, rt and the four phases as f32 with NaN for "none",
// sc u16, st and the error class u8). Appending is amortised O(1); a
// probe older than the newest (history backfill) is inserted in place; a
// probe already held (same t) is ignored, so live, replay and history may
// overlap freely.

import { ST_DOWN, ST_UNKNOWN, ST_UP } from "./classify.js";

const ST_CODES = { up: ST_UP, down: ST_DOWN, unknown: ST_UNKNOWN };
export const ST_NAMES = ["up", "down", "unknown"];

/** Error classes seen so far, shared by every series: index 0 is none. */
const errorNames = [null];
const errorIds = new Map();

function errorId(name) {
  if (name === null || name === undefined) return 0;
  let id = errorIds.get(name);
  if (id === undefined) {
    id = errorNames.length;
    errorNames.push(name);
    errorIds.set(name, id);
  }
  return id;
}

export function errorName(id) {
  return errorNames[id] ?? null;
}

const FIELDS = [
  ["t", Float64Array],
  ["gseq", Float64Array],
  ["rt", Float32Array],
  ["dn", Float32Array],
  ["cn", Float32Array],
  ["tl", Float32Array],
  ["ft", Float32Array],
  ["sc", Uint16Array],
  ["st", Uint8Array],
  ["err", Uint8Array],
];

export const BYTES_PER_PROBE = 8 + 8 + 4 * 5 + 2 + 1 + 1;

const nan = (v) => (v === null || v === undefined ? NaN : v);

export class Series {
  constructor(capacity = 256) {
    this.length = 0;
    this.capacity = capacity;
    for (const [name, Type] of FIELDS) this[name] = new Type(capacity);
    /** Bumped on every change: views redraw when it moved. */
    this.version = 0;
  }

  grow(need) {
    if (need <= this.capacity) return;
    let cap = this.capacity;
    while (cap < need) cap = Math.ceil(cap * 1.5);
    for (const [name, Type] of FIELDS) {
      const next = new Type(cap);
      next.set(this[name].subarray(0, this.length));
      this[name] = next;
    }
    this.capacity = cap;
  }

  /** The first index whose t is >= t. */
  lowerBound(t) {
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.t[mid] < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Adds a record of the JSON shape (PROTOCOL.md 3.5) with its gseq; false if held already. */
  add(gseq, r) {
    const t = r.t;
    let at = this.length;
    if (at > 0 && this.t[at - 1] >= t) {
      at = this.lowerBound(t);
      if (at < this.length && this.t[at] === t) return false;
    }
    this.grow(this.length + 1);
    if (at < this.length) {
      for (const [name] of FIELDS) this[name].copyWithin(at + 1, at, this.length);
    }
    this.t[at] = t;
    this.gseq[at] = gseq;
    this.rt[at] = r.rt;
    this.dn[at] = nan(r.dn);
    this.cn[at] = nan(r.cn);
    this.tl[at] = nan(r.tl);
    this.ft[at] = nan(r.ft);
    this.sc[at] = r.sc ?? 0;
    this.st[at] = ST_CODES[r.st] ?? ST_UNKNOWN;
    this.err[at] = errorId(r.error);
    this.length++;
    this.version++;
    return true;
  }

  /** Probe i in the record's JSON shape. */
  record(i) {
    const opt = (v) => (Number.isNaN(v) ? null : v);
    return {
      t: this.t[i],
      rt: this.rt[i],
      sc: this.sc[i] || null,
      st: ST_NAMES[this.st[i]],
      dn: opt(this.dn[i]),
      cn: opt(this.cn[i]),
      tl: opt(this.tl[i]),
      ft: opt(this.ft[i]),
      error: errorName(this.err[i]),
    };
  }

  /** Bytes held by the arrays. */
  bytes() {
    return this.capacity * BYTES_PER_PROBE;
  }
}
