// Signed ticket codes (issue 10), checked offline with the event's public key.
//
// The format is the one internal/platform/ticketsig writes (the Go side is the reference and
// both are held to internal/platform/ticketsig/testdata/vectors.json):
//
//   S1.<kid>.<b64url(ticket_id 16 bytes || event_id 16 bytes)>.<b64url(ed25519 signature)>
//
// signed over "sbor-ticket-v1\n" || kid || "\n" || ticket_id || event_id, where kid is the
// first 8 bytes of SHA-256(public key) and base64url is RFC 4648 §5 without padding.
// Everything here is pure (WebCrypto only), so Node's test runner runs it as the browser does.

const PREFIX = "S1";
const CONTEXT = "sbor-ticket-v1\n";
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const KID_CHARS = 11; // 8 bytes
const PAYLOAD_CHARS = 43; // 32 bytes
const SIGNATURE_CHARS = 86; // 64 bytes
const SHAPE = /^S1\.([A-Za-z0-9_-]{11})\.([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{86})$/;

/** Error thrown for text that is not a well-formed signed code. */
export class MalformedCode extends Error {}

/** Encodes bytes as base64url without padding. */
export function encodeBase64url(bytes) {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63] + ALPHABET[(n >> 6) & 63] + ALPHABET[n & 63];
  }
  if (bytes.length - i === 1) {
    const n = bytes[i] << 16;
    out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63];
  } else if (bytes.length - i === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63] + ALPHABET[(n >> 6) & 63];
  }
  return out;
}

/**
 * Decodes strict base64url: the URL-safe alphabet only, no padding, and no stray bits in the
 * last character (so every byte string has exactly one spelling, as with Go's Strict mode).
 * Returns null for anything else.
 */
export function decodeBase64url(text) {
  if (typeof text !== "string" || text.length % 4 === 1) return null;
  const bytes = new Uint8Array(Math.floor((text.length * 6) / 8));
  let acc = 0;
  let bits = 0;
  let at = 0;
  for (const ch of text) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) return null;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes[at++] = (acc >> bits) & 0xff;
    }
  }
  if (bits > 0 && (acc & ((1 << bits) - 1)) !== 0) return null;
  return bytes;
}

/** Formats 16 bytes as a lower-case UUID. */
export function formatUUID(bytes) {
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Tells a signed code from a plain ticket code at a glance (the full check is parseSignedCode). */
export function looksSigned(text) {
  return typeof text === "string" && text.startsWith(PREFIX + ".");
}

/**
 * Parses a signed code strictly. Returns {kid, ticketId, eventId, message, signature}, where
 * message is the exact byte string that was signed. Throws MalformedCode otherwise.
 */
export function parseSignedCode(text) {
  const m = typeof text === "string" ? SHAPE.exec(text) : null;
  if (!m) throw new MalformedCode("not a signed ticket code");
  const [, kid, payloadText, signatureText] = m;
  const kidBytes = decodeBase64url(kid);
  const payload = decodeBase64url(payloadText);
  const signature = decodeBase64url(signatureText);
  if (!kidBytes || kidBytes.length !== 8 || !payload || payload.length !== 32 || !signature || signature.length !== 64) {
    throw new MalformedCode("not a signed ticket code");
  }
  const head = new TextEncoder().encode(CONTEXT + kid + "\n");
  const message = new Uint8Array(head.length + payload.length);
  message.set(head, 0);
  message.set(payload, head.length);
  return {
    kid,
    ticketId: formatUUID(payload.subarray(0, 16)),
    eventId: formatUUID(payload.subarray(16, 32)),
    message,
    signature,
  };
}

/** Computes the key id of a raw 32-byte Ed25519 public key. */
export async function keyID(publicKey) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", publicKey));
  return encodeBase64url(digest.subarray(0, 8));
}

/**
 * Imports a JWKS ({keys: [...]}, as GET /api/events/{id}/scanner-keys answers) into a Map of
 * kid → CryptoKey. Keys that are not Ed25519 signing keys, or whose kid does not match their
 * public key, are left out: a scanner trusts nothing it cannot check.
 */
export async function importKeySet(jwks) {
  const keys = new Map();
  for (const jwk of (jwks && Array.isArray(jwks.keys) ? jwks.keys : [])) {
    if (!jwk || jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.x !== "string" || typeof jwk.kid !== "string") continue;
    if (jwk.use !== undefined && jwk.use !== "sig") continue;
    const raw = decodeBase64url(jwk.x);
    if (!raw || raw.length !== 32 || (await keyID(raw)) !== jwk.kid) continue;
    try {
      keys.set(jwk.kid, await crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]));
    } catch {
      // A key this browser cannot use is as good as absent.
    }
  }
  return keys;
}

/**
 * Checks a signed code offline. keys is what importKeySet returned; eventId, when given, is
 * the event being scanned. Returns {ok: true, ticketId, eventId, kid} or {ok: false, reason}
 * with reason one of: malformed, unknown_key, bad_signature, other_event.
 */
export async function verifySignedCode(text, keys, eventId) {
  let parsed;
  try {
    parsed = parseSignedCode(text);
  } catch {
    return { ok: false, reason: "malformed" };
  }
  const key = keys.get(parsed.kid);
  if (!key) return { ok: false, reason: "unknown_key", ticketId: parsed.ticketId, eventId: parsed.eventId };
  let good = false;
  try {
    good = await crypto.subtle.verify({ name: "Ed25519" }, key, parsed.signature, parsed.message);
  } catch {
    good = false;
  }
  if (!good) return { ok: false, reason: "bad_signature", ticketId: parsed.ticketId, eventId: parsed.eventId };
  if (eventId && parsed.eventId !== eventId.toLowerCase()) {
    return { ok: false, reason: "other_event", ticketId: parsed.ticketId, eventId: parsed.eventId };
  }
  return { ok: true, ticketId: parsed.ticketId, eventId: parsed.eventId, kid: parsed.kid };
}

export const limits = { KID_CHARS, PAYLOAD_CHARS, SIGNATURE_CHARS };
