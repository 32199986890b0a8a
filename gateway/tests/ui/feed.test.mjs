// feed.js: the SSE event parser (the stream's resumption point is its id).
import assert from "node:assert/strict";
import test from "node:test";

import { parseEvent } from "../../ui/feed.js";

test("an event's type, data lines and id", () => {
  assert.deepEqual(parseEvent('event: snapshot\nid: 17\ndata: {"a":\ndata: 1}'), { type: "snapshot", data: '{"a":\n1}', id: "17" });
  assert.deepEqual(parseEvent("data: x"), { type: "message", data: "x", id: null });
});

test("comments and heartbeats are not events", () => {
  assert.equal(parseEvent(": ping"), null);
  assert.equal(parseEvent("event: records"), null);
});
