// overview.js: one row's state and counts (no DOM needed).
import assert from "node:assert/strict";
import test from "node:test";

import { Row } from "../../ui/overview.js";

const r = (st, rt = 1) => ({ t: 1, rt, sc: 200, st, dn: null, cn: 0, tl: null, ft: 1, error: st === "up" ? null : "status" });

test("the replay after a snapshot is counted once, the state stays the snapshot's", () => {
  const row = new Row("eu", "a", "c");
  row.add(10, r("up"), true);
  // Reconnect: the snapshot (state at 13), then the replay of 11..13.
  row.add(13, r("down"), false);
  for (const [g, st] of [[11, "up"], [12, "down"], [13, "down"]]) row.add(g, r(st), true);
  assert.equal(row.st, 1, "down, as the snapshot said");
  assert.equal(row.gseq, 13);
  assert.deepEqual([row.up, row.total, row.sparkN], [2, 4, 4]);
  // The same records again (a second replay, history): not counted twice.
  for (const g of [11, 12, 13]) row.add(g, r("down"), true);
  assert.deepEqual([row.up, row.total], [2, 4]);
});

test("after another gateway's gseqs (since_ahead), smaller gseqs are news again", () => {
  const row = new Row("eu", "a", "c");
  row.add(1_000_000, r("up"), true);
  row.restart();
  assert.equal(row.add(500, r("down"), true), true, "the state moved");
  assert.equal(row.st, 1);
  assert.equal(row.total, 2);
});
