// classify.js: the window's median and each probe's class.
import assert from "node:assert/strict";
import test from "node:test";

import { AMBER, DOWN, OK, RED, ST_DOWN, ST_UNKNOWN, ST_UP, UNKNOWN, classes, median } from "../../ui/classify.js";

function sortedMedian(rt, st) {
  const up = [...rt].filter((_, i) => st[i] === ST_UP).sort((a, b) => a - b);
  if (!up.length) return NaN;
  const k = up.length >> 1;
  return up.length % 2 ? up[k] : (up[k - 1] + up[k]) / 2;
}

// A small deterministic generator, so a failure can be replayed.
function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => ((x = (x * 1103515245 + 12345) >>> 0) / 2 ** 32);
}

test("the median is the sorted median of the up probes, counted or selected", () => {
  const r = rng(7);
  for (let trial = 0; trial < 3000; trial++) {
    const n = 1 + Math.floor(r() * 60);
    const scale = [100, 70000, 5e6][trial % 3];
    const fraction = trial % 11 === 0 ? 0.5 : 0;
    const rt = Array.from({ length: n }, () => Math.floor(r() * scale) + fraction);
    const st = Array.from({ length: n }, () => (r() < 0.8 ? ST_UP : r() < 0.5 ? ST_DOWN : ST_UNKNOWN));
    const want = sortedMedian(rt, st);
    for (const arr of [rt, Float64Array.from(rt), ...(fraction ? [] : [Uint32Array.from(rt)])]) {
      const got = median(arr, Uint8Array.from(st), 0, n);
      assert.ok(Object.is(got, want) || got === want, `trial ${trial}: ${got} != ${want} for ${rt} / ${st}`);
    }
  }
});

test("a window inside the arrays uses only its probes", () => {
  const rt = Uint32Array.from([1000, 10, 20, 30, 1000]);
  const st = new Uint8Array(5);
  assert.equal(median(rt, st, 1, 4), 20);
  assert.equal(median(rt, st, 0, 0), NaN);
});

test("amber from exactly 2x the median, red from exactly 3x; down and unknown by state", () => {
  const rt = Uint32Array.from([10, 10, 10, 10, 10, 19, 20, 29, 30, 5, 5]);
  const st = Uint8Array.from([...Array(9).fill(ST_UP), ST_DOWN, ST_UNKNOWN]);
  const out = new Uint8Array(rt.length);
  assert.equal(classes(rt, st, 0, rt.length, out), 10);
  assert.deepEqual([...out], [OK, OK, OK, OK, OK, OK, AMBER, AMBER, RED, DOWN, UNKNOWN]);
});

test("without an up probe nothing is slow, and no median is claimed", () => {
  const out = new Uint8Array(2);
  const med = classes(Uint32Array.from([5, 9]), Uint8Array.from([ST_DOWN, ST_UNKNOWN]), 0, 2, out);
  assert.ok(Number.isNaN(med));
  assert.deepEqual([...out], [DOWN, UNKNOWN]);
});
