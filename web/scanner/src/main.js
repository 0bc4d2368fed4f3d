// Sbor's door scanner: log in, pick an event, scan QR codes with the camera, check tickets
// in with one tap. Signed codes are verified offline with the event's public keys and
// revocation list; check-ins made without a network are queued on the device and sent when
// the network returns. Loaded as an external module: the page's CSP allows no inline script.

import { prepareZXingModule, readBarcodes } from "zxing-wasm/reader";

import { API, APIError, NetworkError } from "./api.js";
import { CheckinQueue, Outcome, State } from "./queue.js";
import { importKeySet, looksSigned, verifySignedCode } from "./ticketsig.js";

const REVOCATIONS_EVERY_MS = 30_000;
const FLUSH_EVERY_MS = 5_000;
const FRAME_EVERY_MS = 120;
const MAX_FRAME_WIDTH = 960;
const EVENT_KEY = "sbor.scanner.event";

// The decoder's WebAssembly is served next to this script, never from anywhere else.
const assetBase = new URL(".", import.meta.url);
prepareZXingModule({
  overrides: { locateFile: (path, prefix) => (path.endsWith(".wasm") ? new URL(path, assetBase).href : prefix + path) },
  fireImmediately: false,
});

const $ = (id) => document.getElementById(id);
const api = new API(sessionStorage);
const queue = new CheckinQueue(localStorage);

const state = {
  event: null, // {id, title}
  keys: new Map(), // kid → CryptoKey
  revoked: new Map(), // ticket id → reason
  since: 0,
  syncedAt: "",
  current: null, // the ticket on screen: {code, ticketId, label}
  stream: null,
  scanning: false,
  timers: [],
};

// ---- views ---------------------------------------------------------------------------

function showView(name) {
  for (const v of ["login", "events", "scan"]) $(`${v}-view`).hidden = v !== name;
}

function online() {
  return navigator.onLine !== false;
}

function renderNetwork() {
  const el = $("network");
  el.dataset.online = String(online());
  el.textContent = online() ? "Online" : "Offline";
}

/** A stored RFC 3339 time as the wall-clock time here, or "" for none. */
function clock(iso) {
  const t = iso ? new Date(iso) : null;
  return t && !Number.isNaN(t.getTime()) ? t.toLocaleTimeString() : "";
}

/** The last 8 hex digits of a ticket id: its random part (a UUIDv7 starts with the time). */
function shortID(id) {
  return id ? id.replace(/-/g, "").slice(-8) : "";
}

const LABELS = {
  idle: "Point the camera at a ticket",
  checking: "Checking…",
  valid: "VALID",
  used: "USED",
  invalid: "INVALID",
  "checked-in": "CHECKED IN",
  queued: "QUEUED",
  "double-entry": "DOUBLE ENTRY",
  error: "NOT READY",
};

/** Shows a verdict in large colours; only a VALID ticket can be checked in. */
function showVerdict(kind, detail = "") {
  const el = $("verdict");
  el.dataset.state = kind;
  $("verdict-label").textContent = LABELS[kind] || kind;
  $("verdict-detail").textContent = detail;
  $("checkin").disabled = kind !== "valid";
  if (kind === "valid") $("checkin").focus();
}

const REASONS = {
  malformed: "This is not a Sbor ticket.",
  unknown_key: "Not signed with this event's key.",
  bad_signature: "Forged or damaged code: the signature does not match.",
  other_event: "This ticket is for another event.",
  already_used: "Already checked in.",
  ticket_cancelled: "The ticket is cancelled.",
  cancelled: "The ticket is cancelled.",
  transferred: "The ticket was given to someone else; their new ticket is valid, this one is not.",
  not_found: "Unknown ticket.",
  not_allowed: "You may not check in tickets of this event.",
  needs_network: "A code without a signature can only be checked online.",
};

function reasonText(reason) {
  return REASONS[reason] || reason || "";
}

// ---- log and alerts -----------------------------------------------------------------------

const STATE_TEXT = {
  [State.Queued]: "QUEUED",
  [State.Sent]: "CHECKED IN",
  [State.DoubleEntry]: "DOUBLE ENTRY",
  [State.Rejected]: "REJECTED",
};

function renderLog() {
  const entries = queue.entries();
  const pending = entries.filter((e) => e.state === State.Queued).length;
  const badge = $("pending");
  badge.dataset.count = String(pending);
  badge.textContent = `${pending} queued`;
  const list = $("log");
  list.replaceChildren();
  for (const e of entries.slice(-30).reverse()) {
    if (state.event && e.event_id && e.event_id !== state.event.id) continue;
    const li = document.createElement("li");
    li.dataset.state = e.state;
    li.dataset.ticket = e.ticket_id || e.code;
    const s = document.createElement("span");
    s.className = "state";
    s.textContent = STATE_TEXT[e.state] || e.state;
    const text = document.createElement("span");
    const when = clock(e.done_at || e.queued_at);
    text.textContent = `ticket ${e.label || shortID(e.ticket_id) || e.code.slice(0, 12)}${when ? ` at ${when}` : ""}${e.detail && e.detail !== "online" ? ` (${reasonText(e.detail)})` : ""}`;
    li.append(s, text);
    list.append(li);
  }
}

function raiseDoubleEntry(entry) {
  const box = document.createElement("div");
  box.className = "alert";
  box.dataset.kind = "double-entry";
  box.dataset.ticket = entry.ticket_id || entry.code;
  const text = document.createElement("span");
  text.textContent = `DOUBLE ENTRY: ticket ${entry.label || shortID(entry.ticket_id)}, checked in offline at ${clock(entry.queued_at)}, had already been used.`;
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.className = "secondary small";
  dismiss.textContent = "Dismiss";
  dismiss.addEventListener("click", () => box.remove());
  box.append(text, dismiss);
  $("alerts").append(box);
}

// ---- keys and revocations ------------------------------------------------------------

function cacheKey(kind) {
  return `sbor.scanner.${kind}.${state.event.id}`;
}

async function loadKeys() {
  let jwks = null;
  try {
    jwks = await api.scannerKeys(state.event.id);
    localStorage.setItem(cacheKey("keys"), JSON.stringify(jwks));
  } catch (err) {
    if (!(err instanceof NetworkError)) throw err;
    jwks = JSON.parse(localStorage.getItem(cacheKey("keys")) || "null");
  }
  state.keys = await importKeySet(jwks);
}

function loadCachedRevocations() {
  const cached = JSON.parse(localStorage.getItem(cacheKey("revocations")) || "null");
  state.revoked = new Map(cached ? Object.entries(cached.items || {}) : []);
  state.since = cached ? cached.since || 0 : 0;
  state.syncedAt = cached ? cached.synced_at || "" : "";
}

/** Pages through the revocations newer than the cursor; quiet when offline. */
async function syncRevocations() {
  if (!state.event || !online()) return;
  const eventId = state.event.id;
  try {
    for (let page = 0; page < 100; page++) {
      const answer = await api.revocations(eventId, state.since);
      if (!state.event || state.event.id !== eventId) return;
      const items = (answer && answer.items) || [];
      for (const r of items) state.revoked.set(String(r.ticket_id).toLowerCase(), r.reason || "revoked");
      const next = Number(answer && answer.next_since);
      const advanced = Number.isFinite(next) && next > state.since;
      if (advanced) state.since = next;
      if (!advanced || items.length === 0) break;
    }
    state.syncedAt = new Date().toISOString();
    localStorage.setItem(cacheKey("revocations"), JSON.stringify({ since: state.since, synced_at: state.syncedAt, items: Object.fromEntries(state.revoked) }));
  } catch (err) {
    if (!(err instanceof NetworkError)) console.warn("revocations:", err.message);
  }
  renderSync();
}

function renderSync() {
  const at = state.syncedAt ? new Date(state.syncedAt).toLocaleTimeString() : "never";
  $("sync").textContent = `${state.keys.size} key${state.keys.size === 1 ? "" : "s"}, ${state.revoked.size} revoked ticket${state.revoked.size === 1 ? "" : "s"}, synced ${at}`;
}

// ---- verdicts ---------------------------------------------------------------------------

/**
 * What the device alone can say about a code. final means the network cannot change it
 * (a forged code stays forged); otherwise the server is asked when it can be reached.
 */
async function offlineVerdict(code) {
  if (!looksSigned(code)) {
    return { kind: "invalid", reason: "needs_network", final: false, ticketId: "" };
  }
  let check = await verifySignedCode(code, state.keys, state.event.id);
  if (!check.ok && check.reason === "unknown_key" && online()) {
    // A key added since the page loaded: fetch the set once more.
    try {
      await loadKeys();
      renderSync();
      check = await verifySignedCode(code, state.keys, state.event.id);
    } catch {
      // keep the first answer
    }
  }
  if (!check.ok) return { kind: "invalid", reason: check.reason, final: true, ticketId: check.ticketId || "" };
  const revoked = state.revoked.get(check.ticketId);
  if (revoked) return { kind: "invalid", reason: revoked, final: true, ticketId: check.ticketId };
  if (queue.knowsUsed(check.ticketId, code)) {
    return { kind: "used", reason: "already_used", final: false, ticketId: check.ticketId, detail: "Already checked in on this device." };
  }
  return { kind: "valid", reason: "", final: false, ticketId: check.ticketId };
}

async function handleCode(raw) {
  const code = String(raw || "").trim();
  if (!code || !state.event) return;
  showVerdict("checking");
  const local = await offlineVerdict(code);
  state.current = { code, ticketId: local.ticketId, label: shortID(local.ticketId) || code.slice(0, 12) };
  let kind = local.kind;
  let detail = local.detail || reasonText(local.reason);
  if (!local.final && online()) {
    try {
      const v = await api.validate(code);
      if (v && v.valid) {
        kind = "valid";
        detail = "";
      } else if (v && v.status === "used") {
        kind = "used";
        detail = reasonText("already_used");
      } else {
        kind = "invalid";
        detail = reasonText((v && v.reason) || (v && v.status));
      }
    } catch (err) {
      if (err instanceof NetworkError) {
        if (kind === "valid") detail = "Checked offline: signature good, not revoked.";
      } else if (err instanceof APIError && (err.status === 404 || err.status === 403)) {
        kind = "invalid";
        detail = reasonText(err.status === 404 ? "not_found" : "not_allowed");
      } else if (kind === "valid") {
        detail = "Checked offline: the server did not answer.";
      }
    }
  } else if (!local.final && kind === "valid") {
    detail = "Checked offline: signature good, not revoked.";
  }
  showVerdict(kind, `Ticket ${state.current.label}. ${detail}`.trim());
}

// ---- check-in -------------------------------------------------------------------------

function queueCurrent(why) {
  const c = state.current;
  queue.add({ code: c.code, ticketId: c.ticketId, eventId: state.event.id, label: c.label });
  showVerdict("queued", `Ticket ${c.label}: let in. ${why} The check-in is saved on this device and sent when the network is back.`);
  renderLog();
}

async function checkIn() {
  const c = state.current;
  if (!c || $("verdict").dataset.state !== "valid") return;
  $("checkin").disabled = true;
  if (!online()) {
    queueCurrent("Offline.");
    return;
  }
  try {
    await api.checkin(c.code);
    queue.recordSent({ code: c.code, ticketId: c.ticketId, eventId: state.event.id, label: c.label });
    showVerdict("checked-in", `Ticket ${c.label}: let in.`);
  } catch (err) {
    if (err instanceof NetworkError || (err instanceof APIError && err.status >= 500)) {
      queueCurrent(err instanceof NetworkError ? "The network dropped." : "The server is unavailable.");
      return;
    }
    if (err.status === 409 && (err.code === "already_used" || err.code === "")) {
      showVerdict("used", `Ticket ${c.label}: already checked in. Do not let in.`);
    } else if (err.status === 409) {
      showVerdict("invalid", `Ticket ${c.label}: ${reasonText(err.code)}`);
    } else {
      showVerdict("invalid", `Ticket ${c.label}: ${reasonText(err.status === 404 ? "not_found" : err.status === 403 ? "not_allowed" : err.code)}`);
    }
  }
  renderLog();
}

/** Sends the queued check-ins; a 409 already_used comes back as a DOUBLE ENTRY. */
async function flushQueue() {
  if (!api.loggedIn || !online() || queue.pending().length === 0) return;
  const finished = await queue.flush(async (entry) => {
    try {
      await api.checkin(entry.code);
      return Outcome.CheckedIn;
    } catch (err) {
      if (err instanceof NetworkError) return Outcome.Retry;
      if (err.status >= 500 || err.status === 401 || err.status === 429) return Outcome.Retry;
      if (err.status === 409 && (err.code === "already_used" || err.code === "")) return { outcome: Outcome.AlreadyUsed, detail: "already_used" };
      return { outcome: Outcome.Rejected, detail: err.code || (err.status === 404 ? "not_found" : "not_allowed") };
    }
  });
  for (const e of finished) {
    if (e.state === State.DoubleEntry) raiseDoubleEntry(e);
    const c = state.current;
    if (c && $("verdict").dataset.state === "queued" && (c.code === e.code || (c.ticketId && c.ticketId === e.ticket_id))) {
      if (e.state === State.Sent) showVerdict("checked-in", `Ticket ${c.label}: the queued check-in was accepted.`);
      else if (e.state === State.DoubleEntry) showVerdict("double-entry", `Ticket ${c.label} had already been used: this was a second entry.`);
      else showVerdict("invalid", `Ticket ${c.label}: ${reasonText(e.detail)}`);
    }
  }
  if (finished.length) renderLog();
}

// ---- camera --------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function startCamera() {
  stopCamera();
  $("camera-error").textContent = "";
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    $("camera-error").textContent = "This browser gives no camera access here (it needs HTTPS). Type the code instead.";
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: { ideal: "environment" }, width: { ideal: 1280 }, height: { ideal: 720 } },
      audio: false,
    });
    state.stream = stream;
    const video = $("video");
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
  } catch (err) {
    $("camera-error").textContent = `Camera unavailable (${err.name || err.message}). Type the code instead.`;
    return;
  }
  state.scanning = true;
  scanLoop();
}

function stopCamera() {
  state.scanning = false;
  if (state.stream) for (const track of state.stream.getTracks()) track.stop();
  state.stream = null;
  $("video").srcObject = null;
  $("video").hidden = true;
}

const canvas = document.createElement("canvas");
const context = canvas.getContext("2d", { willReadFrequently: true });

async function decodeFrame() {
  const video = $("video");
  if (video.readyState < 2 || !video.videoWidth) return "";
  const scale = Math.min(1, MAX_FRAME_WIDTH / video.videoWidth);
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  context.drawImage(video, 0, 0, canvas.width, canvas.height);
  const image = context.getImageData(0, 0, canvas.width, canvas.height);
  const results = await readBarcodes(image, { formats: ["QRCode"], maxNumberOfSymbols: 1, tryHarder: true });
  const hit = results.find((r) => r.isValid && r.text);
  return hit ? hit.text : "";
}

async function scanLoop() {
  while (state.scanning) {
    let text = "";
    try {
      text = await decodeFrame();
    } catch (err) {
      $("camera-error").textContent = `The QR decoder failed: ${err.message}`;
      stopCamera();
      return;
    }
    if (text && state.scanning) {
      // One ticket at a time: the camera rests until "Scan next".
      stopCamera();
      await handleCode(text);
      return;
    }
    await sleep(FRAME_EVERY_MS);
  }
}

function scanNext() {
  state.current = null;
  showVerdict("idle");
  startCamera();
}

// ---- flow -------------------------------------------------------------------------------

async function showEvents() {
  stopCamera();
  for (const t of state.timers) clearInterval(t);
  state.timers = [];
  state.event = null;
  sessionStorage.removeItem(EVENT_KEY);
  showView("events");
  $("events-error").textContent = "";
  const list = $("event-list");
  list.replaceChildren();
  let events = [];
  try {
    events = await api.scannableEvents();
  } catch (err) {
    $("events-error").textContent = err instanceof NetworkError ? "Offline: the events cannot be loaded." : err.message;
    return;
  }
  $("events-empty").hidden = events.length > 0;
  for (const ev of events) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.eventId = ev.id;
    b.textContent = ev.title;
    const small = document.createElement("small");
    small.textContent = `${ev.starts_at ? new Date(ev.starts_at).toLocaleString() : ""} · ${ev.role === "owner" ? "your event" : "door staff"}`;
    b.append(small);
    b.addEventListener("click", () => pickEvent({ id: ev.id, title: ev.title }));
    li.append(b);
    list.append(li);
  }
}

async function pickEvent(ev) {
  state.event = ev;
  sessionStorage.setItem(EVENT_KEY, JSON.stringify(ev));
  $("event-title").textContent = ev.title;
  $("alerts").replaceChildren();
  showView("scan");
  showVerdict("checking", "Loading the event's keys…");
  try {
    await loadKeys();
  } catch (err) {
    showVerdict("error", `Cannot load the event's keys: ${err.message}`);
    return;
  }
  loadCachedRevocations();
  renderSync();
  renderLog();
  await syncRevocations();
  state.timers.push(setInterval(syncRevocations, REVOCATIONS_EVERY_MS), setInterval(flushQueue, FLUSH_EVERY_MS));
  flushQueue();
  scanNext();
}

async function login(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  $("login-button").disabled = true;
  try {
    await api.login($("email").value.trim(), $("password").value);
    $("password").value = "";
    await showEvents();
  } catch (err) {
    $("login-error").textContent =
      err instanceof NetworkError ? "Offline: logging in needs the network." : err.status === 401 ? "Wrong email or password." : err.message;
  } finally {
    $("login-button").disabled = false;
  }
}

function start() {
  renderNetwork();
  window.addEventListener("online", () => {
    renderNetwork();
    flushQueue();
    syncRevocations();
  });
  window.addEventListener("offline", renderNetwork);
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", () => {
    api.logout();
    showView("login");
  });
  $("change-event").addEventListener("click", showEvents);
  $("checkin").addEventListener("click", checkIn);
  $("next").addEventListener("click", scanNext);
  $("manual-form").addEventListener("submit", (event) => {
    event.preventDefault();
    stopCamera();
    handleCode($("manual-code").value);
    $("manual-code").value = "";
  });
  api.onLoggedOut = () => {
    stopCamera();
    showView("login");
  };
  if (!api.loggedIn) {
    showView("login");
    return;
  }
  const saved = JSON.parse(sessionStorage.getItem(EVENT_KEY) || "null");
  if (saved && saved.id) pickEvent(saved);
  else showEvents();
}

start();
