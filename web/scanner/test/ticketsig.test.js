// The scanner's offline check of signed codes against the Go reference's shared vectors
// (internal/platform/ticketsig/testdata/vectors.json): run with `node --test test/`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import {
  decodeBase64url,
  encodeBase64url,
  importKeySet,
  keyID,
  parseSignedCode,
  verifySignedCode,
} from "../src/ticketsig.js";

const vectorsPath = fileURLToPath(new URL("../../../internal/platform/ticketsig/testdata/vectors.json", import.meta.url));
const vectors = JSON.parse(readFileSync(vectorsPath, "utf8"));
const hex = (bytes) => Buffer.from(bytes).toString("hex");
const fromHex = (text) => new Uint8Array(Buffer.from(text, "hex"));

const keyByName = new Map(vectors.keys.map((k) => [k.name, k]));

async function importedKey(name) {
  const set = await importKeySet({ keys: [keyByName.get(name).jwk] });
  assert.equal(set.size, 1, `key ${name} imports`);
  return [...set.values()][0];
}

test("the vectors file has cases of every kind", () => {
  assert.ok(vectors.valid.length >= 3);
  assert.ok(vectors.invalid.some((v) => v.error === "malformed"));
  assert.ok(vectors.invalid.some((v) => v.error === "bad_signature"));
});

test("key ids are computed as the Go side does", async () => {
  for (const k of vectors.keys) {
    assert.equal(await keyID(fromHex(k.public_key_hex)), k.kid, k.name);
    assert.equal(k.jwk.kid, k.kid);
    assert.equal(hex(decodeBase64url(k.jwk.x)), k.public_key_hex);
  }
});

for (const v of vectors.valid) {
  test(`valid: ${v.name}`, async () => {
    const parsed = parseSignedCode(v.code);
    assert.equal(parsed.ticketId, v.ticket_id);
    assert.equal(parsed.eventId, v.event_id);
    assert.equal(parsed.kid, keyByName.get(v.key).kid);
    assert.equal(hex(parsed.message), v.message_hex);

    // With the event's whole key set, as the page does it.
    const keys = await importKeySet({ keys: vectors.keys.map((k) => k.jwk) });
    assert.deepEqual(await verifySignedCode(v.code, keys, v.event_id), {
      ok: true, ticketId: v.ticket_id, eventId: v.event_id, kid: parsed.kid,
    });
    assert.equal((await verifySignedCode(v.code, keys, v.event_id.toUpperCase())).ok, true);
    // The same ticket presented at another event is refused.
    const other = await verifySignedCode(v.code, keys, "11111111-2222-4333-8444-555555555555");
    assert.deepEqual([other.ok, other.reason], [false, "other_event"]);
    // Without the signing key in the set it cannot be trusted.
    const onlyOther = await importKeySet({ keys: vectors.keys.filter((k) => k.name !== v.key).map((k) => k.jwk) });
    const unknown = await verifySignedCode(v.code, onlyOther, v.event_id);
    assert.deepEqual([unknown.ok, unknown.reason], [false, "unknown_key"]);
  });
}

for (const v of vectors.invalid) {
  test(`invalid (${v.error}): ${v.name}`, async () => {
    if (v.error === "malformed") {
      assert.throws(() => parseSignedCode(v.code));
      const keys = await importKeySet({ keys: vectors.keys.map((k) => k.jwk) });
      assert.deepEqual(await verifySignedCode(v.code, keys), { ok: false, reason: "malformed" });
      return;
    }
    assert.equal(v.error, "bad_signature", "a kind of failure this test knows");
    // Verify under the vector's key whatever kid the code names, as ticketsig.Verify(pub, code).
    const parsed = parseSignedCode(v.code);
    const keys = new Map([[parsed.kid, await importedKey(v.key)]]);
    const got = await verifySignedCode(v.code, keys);
    assert.deepEqual([got.ok, got.reason], [false, "bad_signature"]);
  });
}

test("base64url is strict and round-trips", () => {
  for (let n = 0; n < 70; n++) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff);
    const text = encodeBase64url(bytes);
    assert.equal(Buffer.from(bytes).toString("base64url"), text);
    assert.deepEqual(decodeBase64url(text), bytes);
  }
  for (const bad of ["A", "AB=", "A+B/", "AB C", "AF", "AAB"]) assert.equal(decodeBase64url(bad), null, bad);
});

test("a key set keeps only Ed25519 keys whose kid matches", async () => {
  const a = keyByName.get("a").jwk;
  const b = keyByName.get("b").jwk;
  const keys = await importKeySet({
    keys: [
      a,
      { ...b, kid: a.kid }, // a kid that lies about its key
      { ...b, crv: "X25519" },
      { ...b, kty: "EC" },
      { ...b, use: "enc" },
      { ...b, x: b.x + "A" },
      null,
    ],
  });
  assert.deepEqual([...keys.keys()], [a.kid]);
  assert.equal((await importKeySet(null)).size, 0);
  assert.equal((await importKeySet({ keys: "nope" })).size, 0);
});
