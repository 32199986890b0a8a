// Each probe classified against the visible window's median rt: amber at
// 2x or more, red at 3x or more; down and unknown probes by their state.
// The chart's markers and the table's row tints both come from classes().

export const OK = 0;
export const AMBER = 1;
export const RED = 2;
export const DOWN = 3;
export const UNKNOWN = 4;

export const CLASS_NAMES = ["ok", "amber", "red", "down", "unknown"];

/** st codes of the wire record (WIRE.md): 0 up, 1 down, 2 unknown. */
export const ST_UP = 0;
export const ST_DOWN = 1;
export const ST_UNKNOWN = 2;

let scratch = new Float64Array(1024);
/** Up to this rt (ms), the median is counted rather than selected. */
const COUNTED_MAX = 65535;
/** Counts by whole ms; all zero between calls. */
const counts = new Uint32Array(COUNTED_MAX + 1);

/** The median of rt over lo..hi (exclusive) of probes that are up; NaN if none. */
export function median(rt, st, lo, hi) {
  // Whole milliseconds (as records carry them): one counting pass, O(n).
  let m = 0;
  let max = 0;
  let counted = true;
  for (let i = lo; i < hi; i++) {
    if (st[i] !== ST_UP) continue;
    const v = rt[i];
    if (!(v <= COUNTED_MAX && v === Math.floor(v))) {
      counted = false;
      break;
    }
    counts[v]++;
    m++;
    if (v > max) max = v;
  }
  if (counted) {
    if (m === 0) return NaN;
    // The values of rank k - 1 and k (0-based), zeroing counts on the way.
    const k = m >> 1;
    let seen = 0;
    let below = NaN;
    let at = NaN;
    for (let v = 0; v <= max; v++) {
      const c = counts[v];
      if (!c) continue;
      counts[v] = 0;
      if (seen <= k - 1 && k - 1 < seen + c) below = v;
      if (seen <= k && k < seen + c) at = v;
      seen += c;
    }
    return m & 1 ? at : (below + at) / 2;
  }
  counts.fill(0, 0, max + 1);
  m = 0;
  for (let i = lo; i < hi; i++) if (st[i] === ST_UP) m++;
  if (scratch.length < m) scratch = new Float64Array(Math.max(m, scratch.length * 2));
  let j = 0;
  for (let i = lo; i < hi; i++) if (st[i] === ST_UP) scratch[j++] = rt[i];
  const k = m >> 1;
  const mid = select(scratch, 0, m - 1, k);
  if (m & 1) return mid;
  // Even count: the mean of the two middle values; the lower one is the
  // largest of what lies left of k after the selection.
  let lower = -Infinity;
  for (let i = 0; i < k; i++) if (scratch[i] > lower) lower = scratch[i];
  return (lower + mid) / 2;
}

// Hoare's quickselect: the k-th smallest of a[lo..=hi], in place, O(n).
function select(a, lo, hi, k) {
  while (lo < hi) {
    const pivot = a[(lo + hi) >> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k];
  }
  return a[k];
}

/** Classes of probes lo..hi into out[lo..hi], and the median used. */
export function classes(rt, st, lo, hi, out) {
  const med = median(rt, st, lo, hi);
  // Thresholds hoisted out of the loop: this runs per redraw over every
  // visible probe.
  const amber = med > 0 ? 2 * med : Infinity;
  const red = med > 0 ? 3 * med : Infinity;
  for (let i = lo; i < hi; i++) {
    const s = st[i];
    if (s === ST_UP) {
      const r = rt[i];
      out[i] = r >= red ? RED : r >= amber ? AMBER : OK;
    } else {
      out[i] = s === ST_DOWN ? DOWN : UNKNOWN;
    }
  }
  return med;
}
