package ticket_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/platform/ticketsig"
	"github.com/sbor-dev/sbor/services/ticket"
)

// signWithStoredKey signs a ticket id and event id with the stored key of keyEvent, as
// someone holding that event's key (and no other) could.
func signWithStoredKey(p *platform, keyEvent, ticketID, eventID string) string {
	p.t.Helper()
	seed := scalar[[]byte](p, `SELECT private_key FROM event_signing_keys WHERE event_id = $1`, keyEvent)
	return ticketsig.Sign(ed25519.NewKeyFromSeed(seed), uuid.MustParse(ticketID), uuid.MustParse(eventID))
}

// verifyOffline checks a signed code as a scanner does: with the event's JWK alone.
func verifyOffline(t *testing.T, jwk ticketsig.JSONWebKey, signed, ticketID, eventID string) {
	t.Helper()
	pub, err := ticketsig.ParseJWK(jwk)
	if err != nil {
		t.Fatal(err)
	}
	code, err := ticketsig.Parse(signed)
	if err != nil {
		t.Fatalf("signed code %q: %v", signed, err)
	}
	if !ticketsig.Verify(pub, code) {
		t.Fatalf("signed code %q does not verify with %+v", signed, jwk)
	}
	if code.TicketID.String() != ticketID || code.EventID.String() != eventID {
		t.Fatalf("signed code carries %s/%s, want %s/%s", code.TicketID, code.EventID, ticketID, eventID)
	}
}

// tamper changes the signature of a signed code (its last character, to another canonical
// one), so it parses but does not verify.
func tamper(signed string) string {
	last := byte('A')
	if signed[len(signed)-1] == 'A' {
		last = 'Q'
	}
	return signed[:len(signed)-1] + string(last)
}

// TestSignedCodes follows a ticket's signed code from purchase to the door: the event's key
// comes with its first type, the purchase answer, the list and the QR code carry the signed
// code, it verifies offline with the scanner key, validate and check-in accept it (a
// tampered one is bad_signature for the organizer and unknown for anyone else), and the
// event's cancellation lists the revoked tickets.
func TestSignedCodes(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, nil)
	owner, other, alice := organizer(), organizer(), buyer()
	eventID := p.publishedEvent(owner, "Signed night")
	if n := scalar[int](p, `SELECT count(*) FROM event_signing_keys WHERE event_id = $1`, eventID); n != 0 {
		t.Fatalf("a key before any type: %d", n)
	}
	typeID := p.ticketType(owner, eventID, "standard", 10)
	p.ticketType(owner, eventID, "vip", 10)
	if n := scalar[int](p, `SELECT count(*) FROM event_signing_keys WHERE event_id = $1`, eventID); n != 1 {
		t.Fatalf("%d keys after two types, want 1", n)
	}

	keysPath := "/api/events/" + eventID + "/scanner-keys"
	var jwks ticketsig.JWKS
	r := p.must(http.StatusOK, req{method: "GET", path: keysPath, as: owner})
	if err := json.Unmarshal(r.raw, &jwks); err != nil || len(jwks.Keys) != 1 {
		t.Fatalf("scanner keys: %v %s", err, r.raw)
	}
	jwk := jwks.Keys[0]
	if jwk.Kty != "OKP" || jwk.Crv != "Ed25519" || jwk.Alg != "EdDSA" || jwk.Use != "sig" || len(jwk.Kid) != ticketsig.KIDLen {
		t.Fatalf("scanner key %+v", jwk)
	}
	if kid := scalar[string](p, `SELECT kid FROM event_signing_keys WHERE event_id = $1`, eventID); kid != jwk.Kid {
		t.Fatalf("kid %s, stored %s", jwk.Kid, kid)
	}

	// The purchase answer, the holder's list and the QR code carry the signed code.
	first := p.mustBuy(alice, eventID, typeID)
	signed := first.str("signed_code")
	verifyOffline(t, jwk, signed, first.str("id"), eventID)
	mine := p.must(http.StatusOK, req{method: "GET", path: "/api/tickets", as: alice}).items()
	if len(mine) != 1 || mine[0]["signed_code"] != signed {
		t.Fatalf("my tickets: %v", mine)
	}
	attendees := p.must(http.StatusOK, req{method: "GET", path: "/api/events/" + eventID + "/tickets", as: owner}).items()
	if len(attendees) != 1 || attendees[0]["signed_code"] != signed {
		t.Fatalf("attendees: %v", attendees)
	}
	qr := p.must(http.StatusOK, req{method: "GET", path: "/api/tickets/" + first.str("id") + "/qr", as: alice})
	wantQR, err := ticket.QRPNGForTest(signed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(qr.raw, wantQR) {
		t.Fatal("the QR code does not encode the signed code")
	}

	// Validate: the organizer sees the ticket; a tampered code is bad_signature for the
	// organizer and an unknown code for anyone else; a malformed one is unknown for all.
	validate := func(code string, as *identity.Identity) response {
		return p.tickets(req{method: "POST", path: "/api/tickets/" + code + "/validate", as: as})
	}
	if v := validate(signed, owner); v.status != http.StatusOK || v.body["valid"] != true || v.str("status") != "active" {
		t.Fatalf("validate signed: %d %s", v.status, v.raw)
	}
	bad := tamper(signed)
	if v := validate(bad, owner); v.status != http.StatusOK || v.body["valid"] != false || v.str("status") != "invalid" || v.str("reason") != "bad_signature" {
		t.Fatalf("validate tampered, as owner: %d %s", v.status, v.raw)
	}
	for name, as := range map[string]*identity.Identity{"other organizer": other, "holder": alice} {
		if v := validate(bad, as); v.status != http.StatusNotFound || v.str("code") != "ticket_not_found" {
			t.Fatalf("validate tampered as %s: %d %s", name, v.status, v.raw)
		}
		// A genuine code of another's event is refused as the plain code is.
		if v := validate(signed, as); v.status == http.StatusOK {
			t.Fatalf("validate as %s: %d %s", name, v.status, v.raw)
		}
	}
	// Codes no key of this event signed: malformed, an unknown kid, another event's key for
	// this event's ticket, a genuine code of another event naming this event's ticket, a key
	// of an event this service never heard of.
	otherEvent := p.publishedEvent(owner, "Other night")
	p.ticketType(owner, otherEvent, "standard", 1)
	_, stranger, _ := ed25519.GenerateKey(nil)
	for _, tc := range []struct {
		name, code string
		status     int
		reason     string
	}{
		{"prefix only", "S1.", http.StatusNotFound, ""},
		{"too long", signed + "A", http.StatusNotFound, ""},
		{"too short", signed[:len(signed)-1], http.StatusNotFound, ""},
		{"bad separator", "S1." + signed[3:14] + "_" + signed[15:], http.StatusNotFound, ""},
		{"unknown kid", "S1.AAAAAAAAAAA." + signed[15:], http.StatusOK, "bad_signature"},
		{"another event's key", signWithStoredKey(p, otherEvent, first.str("id"), eventID), http.StatusOK, "bad_signature"},
		{"genuine for another event", signWithStoredKey(p, otherEvent, first.str("id"), otherEvent), http.StatusNotFound, ""},
		{"unknown event", ticketsig.Sign(stranger, uuid.MustParse(first.str("id")), uuid.New()), http.StatusNotFound, ""},
	} {
		v := validate(tc.code, owner)
		if v.status != tc.status || (tc.reason == "" && v.str("code") != "ticket_not_found") || (tc.reason != "" && v.str("reason") != tc.reason) {
			t.Fatalf("validate %s %q: %d %s", tc.name, tc.code, v.status, v.raw)
		}
		if c := p.tickets(req{method: "POST", path: "/api/tickets/" + tc.code + "/checkin", as: owner}); c.status != http.StatusNotFound {
			t.Fatalf("check-in %s: %d %s", tc.name, c.status, c.raw)
		}
	}

	// Check-in: a tampered code is an unknown code (404); the genuine one checks in once.
	checkin := func(code string, as *identity.Identity) response {
		return p.tickets(req{method: "POST", path: "/api/tickets/" + code + "/checkin", as: as})
	}
	if c := checkin(bad, owner); c.status != http.StatusNotFound || c.str("code") != "ticket_not_found" {
		t.Fatalf("check-in tampered: %d %s", c.status, c.raw)
	}
	c := checkin(signed, owner)
	if c.status != http.StatusOK || c.str("status") != "used" || c.str("signed_code") != signed {
		t.Fatalf("check-in signed: %d %s", c.status, c.raw)
	}
	if c := checkin(signed, owner); c.status != http.StatusConflict || c.str("code") != "already_used" {
		t.Fatalf("second check-in: %d %s", c.status, c.raw)
	}
	if v := validate(signed, owner); v.status != http.StatusOK || v.str("reason") != "already_used" {
		t.Fatalf("validate used: %d %s", v.status, v.raw)
	}
	// The plain code keeps working.
	second := p.mustBuy(alice, eventID, typeID)
	if c := checkin(second.str("code"), owner); c.status != http.StatusOK {
		t.Fatalf("check-in plain: %d %s", c.status, c.raw)
	}
	third, fourth := p.mustBuy(alice, eventID, typeID), p.mustBuy(alice, eventID, typeID)
	active := []string{third.str("id"), fourth.str("id")}

	// Who may read keys and revocations: the organizer (staff: see the staff tests); anyone
	// else gets 404, an anonymous caller 401.
	revPath := "/api/events/" + eventID + "/revocations"
	for _, path := range []string{keysPath, revPath} {
		for name, as := range map[string]*identity.Identity{"other organizer": other, "holder": alice} {
			if r := p.tickets(req{method: "GET", path: path, as: as}); r.status != http.StatusNotFound || r.str("code") != "event_not_found" {
				t.Fatalf("%s as %s: %d %s", path, name, r.status, r.raw)
			}
		}
		if r := p.tickets(req{method: "GET", path: path}); r.status != http.StatusUnauthorized {
			t.Fatalf("%s anonymous: %d %s", path, r.status, r.raw)
		}
		if r := p.tickets(req{method: "GET", path: "/api/events/" + uuid.NewString() + path[len("/api/events/")+36:], as: owner}); r.status != http.StatusNotFound {
			t.Fatalf("%s of an unknown event: %d %s", path, r.status, r.raw)
		}
	}
	for _, since := range []string{"-1", "abc", "1.5", "99999999999999999999"} {
		if r := p.tickets(req{method: "GET", path: revPath + "?since=" + since, as: owner}); r.status != http.StatusBadRequest || r.str("code") != "invalid_since" {
			t.Fatalf("since=%s: %d %s", since, r.status, r.raw)
		}
	}
	empty := p.must(http.StatusOK, req{method: "GET", path: revPath, as: owner})
	if len(empty.items()) != 0 || empty.num("next_since") != 0 {
		t.Fatalf("revocations before any: %s", empty.raw)
	}

	// Cancelling the event revokes its active tickets, not the used ones.
	p.cancelEvent(owner, eventID)
	p.waitCancelled(eventID)
	revs := p.must(http.StatusOK, req{method: "GET", path: revPath, as: owner})
	items := revs.items()
	if len(items) != len(active) {
		t.Fatalf("revocations after cancellation: %s", revs.raw)
	}
	seen := map[string]bool{}
	for _, it := range items {
		if it["reason"] != "cancelled" || it["revoked_at"] == "" {
			t.Fatalf("revocation %v", it)
		}
		seen[it["ticket_id"].(string)] = true
	}
	for _, id := range active {
		if !seen[id] {
			t.Fatalf("ticket %s not revoked: %s", id, revs.raw)
		}
	}
	next := revs.num("next_since")
	if next <= 0 {
		t.Fatalf("next_since %d", next)
	}
	again := p.must(http.StatusOK, req{method: "GET", path: revPath + "?since=" + strconv.Itoa(next), as: owner})
	if len(again.items()) != 0 || again.num("next_since") != next {
		t.Fatalf("poll with next_since: %s", again.raw)
	}
	// Paging from the first one's number gives the rest.
	firstSeq := scalar[int64](p, `SELECT revocation_seq FROM tickets WHERE id = $1`, items[0]["ticket_id"])
	rest := p.must(http.StatusOK, req{method: "GET", path: revPath + "?since=" + strconv.FormatInt(firstSeq, 10), as: owner})
	if len(rest.items()) != len(active)-1 || rest.num("next_since") != next {
		t.Fatalf("revocations since %d: %s", firstSeq, rest.raw)
	}
	// A cancelled ticket's signed code still verifies offline (that is what the list is
	// for) and is refused online.
	if v := validate(third.str("signed_code"), owner); v.status != http.StatusOK || v.str("reason") != "ticket_cancelled" {
		t.Fatalf("validate cancelled: %d %s", v.status, v.raw)
	}
}
