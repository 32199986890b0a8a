// feed.js: the SSE event parser (the stream's resumption point is its id).
import assert from "node:assert/strict";
import test from "node:test";

import { Feed, parseEvent } from "../../ui/feed.js";

test("an event's type, data lines and id", () => {
  assert.deepEqual(parseEvent('event: snapshot\nid: 17\ndata: {"a":\ndata: 1}'), { type: "snapshot", data: '{"a":\n1}', id: "17" });
  assert.deepEqual(parseEvent("data: x"), { type: "message", data: "x", id: null });
});

test("comments and heartbeats are not events", () => {
  assert.equal(parseEvent(": ping"), null);
  assert.equal(parseEvent("event: records"), null);
});

// A gateway played by a script: each request to /v1/stream or
// /v1/history is answered by the next answer queued for it.
function gateway() {
  const queues = { stream: [], history: [] };
  const urls = [];
  globalThis.fetch = async (url) => {
    urls.push(url);
    const kind = url.startsWith("/v1/stream") ? "stream" : url.startsWith("/v1/history") ? "history" : "other";
    const next = queues[kind]?.shift();
    if (!next) return new Response("{}", { status: 503 });
    return next();
  };
  return { queues, urls };
}

/** An SSE answer of `events` ({type, data, id}), then an end (or a failure). */
function sse(events, { fail = false } = {}) {
  return () => {
    const text = events.map((e) => `${e.id !== undefined ? `id: ${e.id}\n` : ""}event: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`).join("");
    let sent = false;
    // Pulled: the events are read before the end (an error discards what is queued).
    const body = new ReadableStream({
      pull(c) {
        if (!sent) {
          sent = true;
          c.enqueue(new TextEncoder().encode(text));
        } else if (fail) c.error(new TypeError("network"));
        else c.close();
      },
    });
    return new Response(body, { status: 200, headers: { "content-type": "text/event-stream" } });
  };
}

const rec = (gseq) => ({ gseq, agent: "a", check: "c", record: { t: gseq * 1000, rt: 1, sc: 200, st: "up", dn: null, cn: 0, tl: null, ft: 1, error: null } });

async function until(what, cond, ms = 15000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`waited for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function feed() {
  const seen = { records: [], live: [], snapshots: 0, modes: [] };
  const f = new Feed({ name: "r", url: "" }, () => "tok", {
    hello: () => {},
    snapshot: () => seen.snapshots++,
    records: (_, records, live) => {
      for (const r of records) {
        seen.records.push(r.gseq);
        seen.live.push(live);
      }
    },
    restart: () => {},
    mode: (_, m) => seen.modes.push(m),
    unauthorized: () => {},
  });
  return { f, seen };
}

test("a reconnect resumes from the snapshot's id, not its gseq, when a replay was cut off", async () => {
  const gw = gateway();
  gw.queues.stream.push(
    sse([{ type: "snapshot", data: { gseq: 200, states: [] } }, { type: "records", data: { records: [rec(201), rec(203)] }, id: 203 }]),
    // Resumed at 203: the snapshot is at 210, the replay (204..210) is cut after 204.
    sse([{ type: "snapshot", data: { gseq: 210, states: [] }, id: 203 }, { type: "records", data: { records: [rec(204)] }, id: 204 }], { fail: true }),
    sse([{ type: "snapshot", data: { gseq: 212, states: [] }, id: 204 }, { type: "records", data: { records: [rec(205)] }, id: 205 }]),
  );
  const { f, seen } = feed();
  f.start();
  await until("three connections", () => gw.urls.filter((u) => u.startsWith("/v1/stream")).length >= 4);
  f.stop();
  const streams = gw.urls.filter((u) => u.startsWith("/v1/stream"));
  assert.deepEqual(streams.slice(0, 4), ["/v1/stream", "/v1/stream?since=203", "/v1/stream?since=204", "/v1/stream?since=205"]);
  assert.deepEqual(seen.records, [201, 203, 204, 205]);
  // The replay after a reconnect is not news (paint figures count only news).
  assert.deepEqual(seen.live, [true, true, false, false]);
});

test("a reset is healed from history; a heal that fails is tried again, and since never skips the gap", async () => {
  const gw = gateway();
  const reset = { type: "reset", data: { reason: "since_out_of_ring", gseq: 30, missed_from: 11, missed_to: 20 } };
  const page = (records, next) => () => new Response(JSON.stringify({ records, next_cursor: next }), { status: 200 });
  gw.queues.stream.push(
    sse([{ type: "snapshot", data: { gseq: 10, states: [] } }], { fail: true }),
    sse([reset, { type: "snapshot", data: { gseq: 30, states: [] } }]),
    sse([reset, { type: "snapshot", data: { gseq: 30, states: [] } }, { type: "records", data: { records: [rec(31)] }, id: 31 }]),
  );
  gw.queues.history.push(
    () => new Response('{"error": "unavailable"}', { status: 503 }),
    page([rec(11), rec(15)], "16"),
    page([rec(20)], null),
  );
  const { f, seen } = feed();
  f.start();
  await until("the healed range and the live record", () => seen.records.includes(31));
  f.stop();
  const streams = gw.urls.filter((u) => u.startsWith("/v1/stream"));
  assert.deepEqual(streams.slice(0, 3), ["/v1/stream", "/v1/stream?since=10", "/v1/stream?since=10"], "the failed heal did not move since");
  const history = gw.urls.filter((u) => u.startsWith("/v1/history"));
  assert.equal(history.length, 3);
  assert.ok(history[2].includes("cursor=16"), history[2]);
  assert.deepEqual(seen.records, [11, 15, 20, 31]);
  assert.deepEqual(seen.live, [false, false, false, true]);
});
