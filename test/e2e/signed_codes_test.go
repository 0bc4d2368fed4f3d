package e2e

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/sbor-dev/sbor/internal/platform/ticketsig"
	"github.com/sbor-dev/sbor/test/platform"
)

// TestSignedCodes (issue 10): a bought ticket carries a signed code that a scanner verifies
// offline with the event's public key; validate and check-in accept it through the gateway
// (a forged one is bad_signature); cancelling the event puts its tickets on the revocation
// list that scanners poll.
func TestSignedCodes(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	org, rival := p.Organizer("Olga"), p.Organizer("Oscar")
	door, buyer := p.SignUp("Dora"), p.SignUp("Bea")

	start := time.Now().Add(7 * 24 * time.Hour).Truncate(time.Second)
	eventID := org.Must(201, "POST", "/api/events", newEvent("Signed night", start)).JSON["id"].(string)
	org.Must(200, "POST", "/api/events/"+eventID+"/publish", nil)
	typeID := org.Must(201, "POST", "/api/events/"+eventID+"/ticket-types", ticketType("standard", 20, start.Add(-time.Hour))).JSON["id"].(string)
	org.Must(201, "POST", "/api/events/"+eventID+"/staff", map[string]string{"email": door.Email})

	// Buy; the signed code is in the purchase answer and in the holder's list.
	buy := func() platform.Response {
		return buyer.Must(201, "POST", "/api/events/"+eventID+"/tickets", map[string]string{"ticket_type_id": typeID})
	}
	bought := buy()
	ticketID, _ := bought.JSON["id"].(string)
	signed, _ := bought.JSON["signed_code"].(string)
	listed := ""
	for _, it := range platform.Items(buyer.Must(200, "GET", "/api/tickets", nil)) {
		if it["id"] == ticketID {
			listed, _ = it["signed_code"].(string)
		}
	}
	if signed == "" || listed != signed {
		t.Fatalf("signed code %q, listed %q", signed, listed)
	}

	// The scanner's key, for the organizer and for staff alike; verify offline.
	keysPath := "/api/events/" + eventID + "/scanner-keys"
	var jwks ticketsig.JWKS
	if err := json.Unmarshal(door.Must(200, "GET", keysPath, nil).Body, &jwks); err != nil || len(jwks.Keys) != 1 {
		t.Fatalf("scanner keys: %v %+v", err, jwks)
	}
	var ownerKeys ticketsig.JWKS
	if err := json.Unmarshal(org.Must(200, "GET", keysPath, nil).Body, &ownerKeys); err != nil || len(ownerKeys.Keys) != 1 || ownerKeys.Keys[0] != jwks.Keys[0] {
		t.Fatalf("the organizer's keys %+v differ from staff's %+v (%v)", ownerKeys, jwks, err)
	}
	rival.Must(404, "GET", keysPath, nil)
	buyer.Must(404, "GET", keysPath, nil)
	pub, err := ticketsig.ParseJWK(jwks.Keys[0])
	if err != nil {
		t.Fatal(err)
	}
	code, err := ticketsig.Parse(signed)
	if err != nil || !ticketsig.Verify(pub, code) {
		t.Fatalf("signed code %q does not verify offline: %v", signed, err)
	}
	if code.TicketID.String() != ticketID || code.EventID.String() != eventID {
		t.Fatalf("signed code names %s/%s", code.TicketID, code.EventID)
	}

	// Online: a forged code is bad_signature for staff and unknown for anyone else; the
	// genuine one validates and checks in once.
	// Another last character that keeps the signature canonical (its 4 low bits are padding).
	last := "A"
	if signed[len(signed)-1] == 'A' {
		last = "Q"
	}
	forged := signed[:len(signed)-1] + last
	if r := door.Must(200, "POST", "/api/tickets/"+forged+"/validate", nil); r.JSON["valid"] != false || r.JSON["reason"] != "bad_signature" || r.JSON["status"] != "invalid" {
		t.Fatalf("validate forged: %s", r.Body)
	}
	rival.Must(404, "POST", "/api/tickets/"+forged+"/validate", nil)
	door.Must(404, "POST", "/api/tickets/"+forged+"/checkin", nil)
	if r := door.Must(200, "POST", "/api/tickets/"+signed+"/validate", nil); r.JSON["valid"] != true {
		t.Fatalf("validate signed: %s", r.Body)
	}
	rival.Must(403, "POST", "/api/tickets/"+signed+"/checkin", nil)
	if r := door.Must(200, "POST", "/api/tickets/"+signed+"/checkin", nil); r.JSON["status"] != "used" || r.JSON["signed_code"] != signed {
		t.Fatalf("check-in signed: %s", r.Body)
	}
	if r := org.Must(409, "POST", "/api/tickets/"+signed+"/checkin", nil); r.JSON["code"] != "already_used" {
		t.Fatalf("second check-in: %s", r.Body)
	}

	// Cancel the event: the tickets still active are revoked, with reason cancelled.
	revPath := "/api/events/" + eventID + "/revocations"
	before := door.Must(200, "GET", revPath, nil)
	if len(platform.Items(before)) != 0 || before.JSON["next_since"] != float64(0) {
		t.Fatalf("revocations before cancelling: %s", before.Body)
	}
	kept := []string{buy().JSON["id"].(string), buy().JSON["id"].(string)}
	org.Must(200, "POST", "/api/events/"+eventID+"/cancel", nil)
	var revoked platform.Response
	platform.Eventually(t, 30*time.Second, "the cancelled tickets on the revocation list", func() bool {
		revoked = door.Must(200, "GET", revPath+"?since=0", nil)
		return len(platform.Items(revoked)) == len(kept)
	})
	got := map[string]bool{}
	for _, it := range platform.Items(revoked) {
		if it["reason"] != "cancelled" {
			t.Fatalf("revocation %v", it)
		}
		got[it["ticket_id"].(string)] = true
	}
	if !got[kept[0]] || !got[kept[1]] || got[ticketID] {
		t.Fatalf("revoked %v, want %v (not the used %s)", got, kept, ticketID)
	}
	next := int(revoked.JSON["next_since"].(float64))
	if r := org.Must(200, "GET", revPath+"?since="+strconv.Itoa(next), nil); len(platform.Items(r)) != 0 || int(r.JSON["next_since"].(float64)) != next {
		t.Fatalf("polling from next_since: %s", r.Body)
	}
	org.Must(400, "GET", revPath+"?since=-1", nil)
	rival.Must(404, "GET", revPath, nil)
}
