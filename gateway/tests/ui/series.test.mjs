// series.js: one check's probes in typed arrays.
import assert from "node:assert/strict";
import test from "node:test";

import { BYTES_PER_PROBE, Series } from "../../ui/series.js";

const record = (t, extra = {}) => ({ t, rt: 40, sc: 200, st: "up", dn: 2, cn: 5, tl: null, ft: 20, error: null, ...extra });

test("a probe is 32 bytes of arrays, and growth leaves at most an eighth unused past 16k", () => {
  assert.equal(BYTES_PER_PROBE, 32);
  const s = new Series(4096);
  for (let i = 0; i < 86400; i++) s.add(i, record(1000 * i));
  assert.equal(s.length, 86400);
  assert.ok(s.capacity <= 86400 * 1.125 + 1, `capacity ${s.capacity}`);
  assert.equal(s.bytes(), s.capacity * 32);
});

test("records come back in the record's shape, nulls and long phases included", () => {
  const s = new Series(2);
  const rs = [
    record(3000),
    record(1000, { st: "down", sc: null, dn: null, cn: 900000, tl: null, ft: null, rt: 900001, error: "connect_timeout" }),
    record(2000, { dn: 65533, cn: 65534, tl: 70000, ft: 0 }),
  ];
  rs.forEach((r, i) => assert.equal(s.add(10 + i, r), true));
  assert.deepEqual([0, 1, 2].map((i) => s.record(i)), [rs[1], rs[2], rs[0]]);
  assert.deepEqual([...s.gseq.subarray(0, 3)], [11, 12, 10]);
});

test("the same t twice is held once, whichever way it came", () => {
  const s = new Series();
  assert.equal(s.add(5, record(1000)), true);
  assert.equal(s.add(6, record(2000)), true);
  assert.equal(s.add(5, record(1000)), false);
  assert.equal(s.add(7, record(2000, { rt: 99 })), false);
  assert.equal(s.length, 2);
  assert.equal(s.rt[1], 40);
});

test("history older than the live tip is inserted in order", () => {
  const s = new Series(4);
  for (const t of [50, 60, 70]) s.add(t, record(t));
  for (const t of [10, 55, 20, 65, 5]) s.add(t, record(t));
  assert.deepEqual([...s.t.subarray(0, s.length)], [5, 10, 20, 50, 55, 60, 65, 70]);
  assert.equal(s.lowerBound(21), 3);
  assert.equal(s.lowerBound(100), 8);
});

test("the oldest probes go first when a view is bounded", () => {
  const s = new Series(4);
  for (const t of [10, 20, 30, 40, 50]) s.add(t, record(t, t === 20 ? { ft: 70000 } : {}));
  s.dropOldest(2);
  assert.deepEqual([...s.t.subarray(0, s.length)], [30, 40, 50]);
  assert.equal(s.big.size, 0);
  assert.deepEqual(s.record(0), record(30));
  assert.equal(s.add(20, record(20)), true);
  assert.deepEqual([...s.t.subarray(0, s.length)], [20, 30, 40, 50]);
});
