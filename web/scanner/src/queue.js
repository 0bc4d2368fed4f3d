// The offline check-in queue: check-ins tapped while the network is down are kept in
// localStorage (they survive a reload or a closed tab) and sent, oldest first, when it is back.
// The server still decides: a queued check-in answered 409 already_used is a DOUBLE ENTRY —
// someone got in with that ticket already — and the page says so loudly.

/** States an entry goes through: queued → sent | double_entry | rejected. */
export const State = Object.freeze({
  Queued: "queued",
  Sent: "sent",
  DoubleEntry: "double_entry",
  Rejected: "rejected",
});

/** What send() reports for one entry. */
export const Outcome = Object.freeze({
  CheckedIn: "checked_in", // 200: let in
  AlreadyUsed: "already_used", // 409 already_used: a double entry
  Rejected: "rejected", // any other final refusal (cancelled, transferred, unknown, not allowed)
  Retry: "retry", // network down, server unavailable: keep it and try later
});

const KEEP_DONE = 200; // finished entries kept for the log; the oldest go first

export class CheckinQueue {
  /**
   * @param {Storage} storage localStorage, or anything with getItem/setItem
   * @param {string} key the storage key
   * @param {() => number} now clock in milliseconds (tests pass their own)
   */
  constructor(storage, key = "sbor.scanner.queue", now = () => Date.now()) {
    this.storage = storage;
    this.key = key;
    this.now = now;
    this.flushing = null;
  }

  /** All entries, oldest first. */
  entries() {
    try {
      const raw = JSON.parse(this.storage.getItem(this.key) || "[]");
      return Array.isArray(raw) ? raw.filter((e) => e && typeof e.code === "string") : [];
    } catch {
      return [];
    }
  }

  save(entries) {
    const pending = entries.filter((e) => e.state === State.Queued);
    const done = entries.filter((e) => e.state !== State.Queued).slice(-KEEP_DONE);
    const keep = new Set([...pending, ...done]);
    this.storage.setItem(this.key, JSON.stringify(entries.filter((e) => keep.has(e))));
  }

  /** Entries still waiting to be sent. */
  pending() {
    return this.entries().filter((e) => e.state === State.Queued);
  }

  /**
   * Queues a check-in unless the same ticket is already waiting (a second tap on the same
   * ticket while offline is not a second check-in). Returns the entry.
   */
  add({ code, ticketId = "", eventId = "", label = "" }) {
    const entries = this.entries();
    const waiting = entries.find((e) => e.state === State.Queued && (e.code === code || (ticketId && e.ticket_id === ticketId)));
    if (waiting) return waiting;
    const at = this.now();
    const entry = {
      id: `${at.toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
      code,
      ticket_id: ticketId,
      event_id: eventId,
      label,
      state: State.Queued,
      queued_at: new Date(at).toISOString(),
      done_at: "",
      detail: "",
    };
    entries.push(entry);
    this.save(entries);
    return entry;
  }

  /** Whether this device checked the ticket in, or queued it (so a rescan shows USED). */
  knowsUsed(ticketId, code) {
    return this.entries().some(
      (e) => (e.state === State.Queued || e.state === State.Sent || e.state === State.DoubleEntry) &&
        ((ticketId && e.ticket_id === ticketId) || e.code === code),
    );
  }

  /** Records a check-in done online, so the log and knowsUsed cover it too. */
  recordSent({ code, ticketId = "", eventId = "", label = "" }) {
    const entries = this.entries();
    const at = new Date(this.now()).toISOString();
    entries.push({ id: `${this.now().toString(36)}-o`, code, ticket_id: ticketId, event_id: eventId, label, state: State.Sent, queued_at: "", done_at: at, detail: "online" });
    this.save(entries);
  }

  /**
   * Sends every queued entry in order with send(entry) → Outcome (async). Stops at the first
   * Retry, leaving it and the rest queued. Concurrent calls share one run. Returns the entries
   * finished in this run.
   */
  flush(send) {
    if (!this.flushing) {
      this.flushing = this.run(send).finally(() => {
        this.flushing = null;
      });
    }
    return this.flushing;
  }

  async run(send) {
    const finished = [];
    for (const entry of this.pending()) {
      let outcome;
      let detail = "";
      try {
        const answer = await send(entry);
        outcome = typeof answer === "string" ? answer : answer.outcome;
        detail = (typeof answer === "object" && answer.detail) || "";
      } catch {
        outcome = Outcome.Retry;
      }
      if (outcome === Outcome.Retry) break;
      const state = outcome === Outcome.CheckedIn ? State.Sent : outcome === Outcome.AlreadyUsed ? State.DoubleEntry : State.Rejected;
      // Re-read before writing: a check-in may have been queued while this one was in flight.
      const entries = this.entries();
      const stored = entries.find((e) => e.id === entry.id);
      if (!stored) continue;
      Object.assign(stored, { state, detail, done_at: new Date(this.now()).toISOString() });
      this.save(entries);
      finished.push({ ...stored });
    }
    return finished;
  }
}
