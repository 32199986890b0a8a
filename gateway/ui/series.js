// One check's probes, held in typed arrays in order of t: 32 bytes a probe
// (t and gseq as f64, rt as u32 ms, the four phases as u16 ms with
// 0xFFFF for "none" and 0xFFFE for "65 534 ms or more, see `big`", sc
// u16, st and the error class u8). Appending is amortised O(1); a probe
// older than the newest (history backfill) is inserted in place; a probe
// already held (same t) is ignored, so live, replay and history may
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
  ["rt", Uint32Array],
  ["dn", Uint16Array],
  ["cn", Uint16Array],
  ["tl", Uint16Array],
  ["ft", Uint16Array],
  ["sc", Uint16Array],
  ["st", Uint8Array],
  ["err", Uint8Array],
];

export const PHASES = ["dn", "cn", "tl", "ft"];
export const BYTES_PER_PROBE = 8 + 8 + 4 + 2 * 4 + 2 + 1 + 1;

/** A phase's "none", and its "too long for 16 bits: look in `big`". */
const NONE = 0xffff;
const BIG = 0xfffe;

export class Series {
  constructor(capacity = 256) {
    this.length = 0;
    this.capacity = capacity;
    for (const [name, Type] of FIELDS) this[name] = new Type(capacity);
    /** Exact phases of 65 534 ms or more, by t (rare: a phase that long). */
    this.big = new Map();
    /** Bumped on every change: views redraw when it moved. */
    this.version = 0;
  }

  grow(need) {
    if (need <= this.capacity) return;
    let cap = this.capacity;
    // Doubling while small, then by an eighth: at most 12.5 % of the
    // arrays unused (36 bytes a probe at worst), for a few more copies.
    while (cap < need) cap = cap < 16384 ? cap * 2 : Math.ceil(cap * 1.125);
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
    this.rt[at] = Math.min(r.rt, 0xffffffff);
    let big = null;
    for (const p of PHASES) {
      const v = r[p];
      if (v === null || v === undefined) this[p][at] = NONE;
      else if (v < BIG) this[p][at] = v;
      else {
        this[p][at] = BIG;
        big ??= {};
        big[p] = v;
      }
    }
    if (big) this.big.set(t, big);
    this.sc[at] = r.sc ?? 0;
    this.st[at] = ST_CODES[r.st] ?? ST_UNKNOWN;
    this.err[at] = errorId(r.error);
    this.length++;
    this.version++;
    return true;
  }

  /** Forgets the oldest n probes. */
  dropOldest(n) {
    n = Math.min(n, this.length);
    if (n <= 0) return;
    const cut = this.t[n - 1];
    for (const [name] of FIELDS) this[name].copyWithin(0, n, this.length);
    this.length -= n;
    for (const t of this.big.keys()) if (t <= cut) this.big.delete(t);
    this.version++;
  }

  /** Phase `p` of probe i in ms, NaN for none. */
  phase(p, i) {
    const v = this[p][i];
    if (v === NONE) return NaN;
    if (v === BIG) return this.big.get(this.t[i])?.[p] ?? NaN;
    return v;
  }

  /** Probe i in the record's JSON shape. */
  record(i) {
    const opt = (v) => (Number.isNaN(v) ? null : v);
    return {
      t: this.t[i],
      rt: this.rt[i],
      sc: this.sc[i] || null,
      st: ST_NAMES[this.st[i]],
      dn: opt(this.phase("dn", i)),
      cn: opt(this.phase("cn", i)),
      tl: opt(this.phase("tl", i)),
      ft: opt(this.phase("ft", i)),
      error: errorName(this.err[i]),
    };
  }

  /** Bytes held by the arrays. */
  bytes() {
    return this.capacity * BYTES_PER_PROBE;
  }
}
