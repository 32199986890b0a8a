// export.js: CSV and JSON of a check's probes.
import assert from "node:assert/strict";
import test from "node:test";

import { csv, json } from "../../ui/export.js";
import { Series } from "../../ui/series.js";

const meta = { region: "eu-west", agent: "a,1", check: "=cmd" };

function series() {
  const s = new Series();
  s.add(7, { t: 1000, rt: 40, sc: 200, st: "up", dn: 2, cn: 5, tl: null, ft: 20, error: null });
  s.add(8, { t: 2000, rt: 900, sc: null, st: "down", dn: null, cn: 900, tl: null, ft: null, error: "connect_timeout" });
  return s;
}

test("CSV: one row a probe, phases included, cells quoted and formula-safe", () => {
  assert.equal(
    csv(series(), 0, 2, meta),
    "region,agent,check,gseq,t,rt,sc,st,dn,cn,tl,ft,error\n" +
      'eu-west,"a,1",\'=cmd,7,1000,40,200,up,2,5,,20,\n' +
      "eu-west,\"a,1\",'=cmd,8,2000,900,,down,,900,,,connect_timeout\n",
  );
  assert.equal(csv(series(), 1, 2, meta).split("\n").length, 3);
});

test("JSON: the items history answers", () => {
  assert.deepEqual(JSON.parse(json(series(), 1, 2, meta)), [
    {
      region: "eu-west",
      agent: "a,1",
      check: "=cmd",
      gseq: 8,
      record: { t: 2000, rt: 900, sc: null, st: "down", dn: null, cn: 900, tl: null, ft: null, error: "connect_timeout" },
    },
  ]);
});
