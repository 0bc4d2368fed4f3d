// The offline check-in queue: run with `node --test test/`.
import { test } from "node:test";
import assert from "node:assert/strict";

import { CheckinQueue, Outcome, State } from "../src/queue.js";

class MemoryStorage {
  constructor() { this.m = new Map(); }
  getItem(k) { return this.m.has(k) ? this.m.get(k) : null; }
  setItem(k, v) { this.m.set(k, String(v)); }
  removeItem(k) { this.m.delete(k); }
}

function newQueue() {
  let t = Date.parse("2026-11-27T10:00:00Z");
  return new CheckinQueue(new MemoryStorage(), "q", () => (t += 1000));
}

test("queued check-ins survive a new queue over the same storage, once per ticket", () => {
  const q = newQueue();
  const first = q.add({ code: "S1.a", ticketId: "t1", eventId: "e" });
  const again = q.add({ code: "S1.a", ticketId: "t1", eventId: "e" });
  assert.equal(again.id, first.id);
  q.add({ code: "S1.b", ticketId: "t2", eventId: "e" });
  const reopened = new CheckinQueue(q.storage, "q");
  assert.deepEqual(reopened.pending().map((e) => e.ticket_id), ["t1", "t2"]);
  assert.ok(reopened.knowsUsed("t1", ""));
  assert.ok(!reopened.knowsUsed("t3", "S1.c"));
});

test("flush sends in order; 409 already_used is a double entry; a network failure stops the run", async () => {
  const q = newQueue();
  for (const t of ["ok", "dup", "gone", "net", "later"]) q.add({ code: `S1.${t}`, ticketId: t });
  const sent = [];
  const answers = {
    ok: Outcome.CheckedIn,
    dup: { outcome: Outcome.AlreadyUsed, detail: "already_used" },
    gone: { outcome: Outcome.Rejected, detail: "ticket_cancelled" },
    net: Outcome.Retry,
  };
  const finished = await q.flush(async (e) => {
    sent.push(e.ticket_id);
    return answers[e.ticket_id];
  });
  assert.deepEqual(sent, ["ok", "dup", "gone", "net"]);
  assert.deepEqual(finished.map((e) => [e.ticket_id, e.state]), [
    ["ok", State.Sent],
    ["dup", State.DoubleEntry],
    ["gone", State.Rejected],
  ]);
  assert.deepEqual(q.pending().map((e) => e.ticket_id), ["net", "later"]);

  // Back online: the rest goes; a thrown error counts as "try again later".
  let calls = 0;
  await q.flush(async () => {
    calls++;
    if (calls === 1) throw new Error("boom");
    return Outcome.CheckedIn;
  });
  assert.deepEqual(q.pending().map((e) => e.ticket_id), ["net", "later"]);
  await q.flush(async () => Outcome.CheckedIn);
  assert.deepEqual(q.pending(), []);
  assert.ok(q.knowsUsed("dup", ""), "a double entry still counts as used here");
});

test("concurrent flushes share one run, so nothing is sent twice", async () => {
  const q = newQueue();
  q.add({ code: "S1.x", ticketId: "x" });
  let sends = 0;
  const send = async () => {
    sends++;
    await new Promise((r) => setTimeout(r, 10));
    return Outcome.CheckedIn;
  };
  await Promise.all([q.flush(send), q.flush(send), q.flush(send)]);
  assert.equal(sends, 1);
});

test("a corrupt store reads as empty and is replaced", () => {
  const q = newQueue();
  q.storage.setItem("q", "{not json");
  assert.deepEqual(q.entries(), []);
  q.add({ code: "S1.y", ticketId: "y" });
  assert.equal(q.pending().length, 1);
});
