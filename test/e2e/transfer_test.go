package e2e

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbor-dev/sbor/test/platform"
)

// TestTicketTransfer (issue 10): a holder gives a ticket to another user by email through
// the gateway. Both are notified; the old code is refused at the door (reason transferred);
// the new holder's new ticket checks in; the type's sold count does not change.
func TestTicketTransfer(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	org := p.Organizer("Olga")
	ann, bob := p.SignUp("Ann"), p.SignUp("Bob")

	start := time.Now().Add(7 * 24 * time.Hour).Truncate(time.Second)
	eventID := org.Must(201, "POST", "/api/events", newEvent("Transfer night", start)).JSON["id"].(string)
	org.Must(200, "POST", "/api/events/"+eventID+"/publish", nil)
	typeID := org.Must(201, "POST", "/api/events/"+eventID+"/ticket-types", ticketType("vip", 10, start.Add(-time.Hour))).JSON["id"].(string)

	bought := ann.Must(201, "POST", "/api/events/"+eventID+"/tickets", map[string]string{"ticket_type_id": typeID})
	oldID, oldCode := bought.JSON["id"].(string), bought.JSON["code"].(string)
	transfer := "/api/tickets/" + oldID + "/transfer"

	// Refusals first: not bob's to give, unknown email, to oneself.
	bob.Must(404, "POST", transfer, map[string]string{"email": ann.Email})
	if r := ann.Must(422, "POST", transfer, map[string]string{"email": "nobody-" + platform.RandomHex(3) + "@example.com"}); r.JSON["code"] != "user_not_found" {
		t.Fatalf("unknown email: %s", r.Body)
	}
	if r := ann.Must(422, "POST", transfer, map[string]string{"email": ann.Email}); r.JSON["code"] != "cannot_transfer_to_self" {
		t.Fatalf("own email: %s", r.Body)
	}
	p.Anonymous().Must(401, "POST", transfer, map[string]string{"email": bob.Email})

	r := ann.Must(200, "POST", transfer, map[string]string{"email": strings.ToUpper(bob.Email)})
	if r.JSON["id"] != oldID || r.JSON["status"] != "transferred" {
		t.Fatalf("transfer: %s", r.Body)
	}
	if r := ann.Must(409, "POST", transfer, map[string]string{"email": bob.Email}); r.JSON["code"] != "ticket_not_active" {
		t.Fatalf("second transfer: %s", r.Body)
	}

	// Bob holds a new ticket of the same type; ann's shows transferred; sold is unchanged.
	bobs := platform.Items(bob.Must(200, "GET", "/api/tickets", nil))
	if len(bobs) != 1 || bobs[0]["id"] == oldID || bobs[0]["code"] == oldCode || bobs[0]["status"] != "active" ||
		bobs[0]["ticket_type_id"] != typeID || bobs[0]["user_id"] != bob.UserID {
		t.Fatalf("bob's tickets: %v", bobs)
	}
	newID, newCode := bobs[0]["id"].(string), bobs[0]["code"].(string)
	if anns := platform.Items(ann.Must(200, "GET", "/api/tickets", nil)); len(anns) != 1 || anns[0]["status"] != "transferred" {
		t.Fatalf("ann's tickets: %v", anns)
	}
	for _, tt := range platform.Items(p.Anonymous().Must(200, "GET", "/api/events/"+eventID+"/ticket-types", nil)) {
		if tt["sold"] != float64(1) {
			t.Fatalf("sold after the transfer: %v", tt)
		}
	}

	// Both are notified.
	platform.Eventually(t, 20*time.Second, "both transfer notifications", func() bool {
		out := notificationsOf(ann, "ticket_transferred_out", eventID)
		in := notificationsOf(bob, "ticket_transferred_in", eventID)
		return len(out) == 1 && len(in) == 1 && out[0]["ticket_id"] == oldID && in[0]["ticket_id"] == newID
	})

	// At the door: the old code is refused, with the plain code and with the signed one; the
	// new ticket checks in.
	if v := org.Must(200, "POST", "/api/tickets/"+oldCode+"/validate", nil); v.JSON["valid"] != false || v.JSON["reason"] != "transferred" {
		t.Fatalf("validate old code: %s", v.Body)
	}
	if r := org.Must(409, "POST", "/api/tickets/"+oldCode+"/checkin", nil); r.JSON["code"] != "ticket_transferred" {
		t.Fatalf("check-in old code: %s", r.Body)
	}
	if signed, _ := bought.JSON["signed_code"].(string); signed != "" {
		if v := org.Must(200, "POST", "/api/tickets/"+signed+"/validate", nil); v.JSON["valid"] != false || v.JSON["reason"] != "transferred" {
			t.Fatalf("validate old signed code: %s", v.Body)
		}
		org.Must(409, "POST", "/api/tickets/"+signed+"/checkin", nil)
	}
	if r := org.Must(200, "POST", "/api/tickets/"+newCode+"/checkin", nil); r.JSON["status"] != "used" || r.JSON["user_id"] != bob.UserID {
		t.Fatalf("check-in new code: %s", r.Body)
	}
	// A used ticket cannot be passed on.
	bob.Must(409, "POST", "/api/tickets/"+newID+"/transfer", map[string]string{"email": ann.Email})
}

// TestPurchaseLimitThroughGateway (issue 10): a type with max_per_user 2 sells one user at
// most two tickets, however many they ask for at once; the refused ones answer 409
// purchase_limit_reached; a retry with an Idempotency-Key is still answered with its ticket.
func TestPurchaseLimitThroughGateway(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	org := p.Organizer("Olga")
	ann, bob := p.SignUp("Ann"), p.SignUp("Bob")

	start := time.Now().Add(7 * 24 * time.Hour).Truncate(time.Second)
	eventID := org.Must(201, "POST", "/api/events", newEvent("Limited", start)).JSON["id"].(string)
	org.Must(200, "POST", "/api/events/"+eventID+"/publish", nil)
	body := ticketType("standard", 100, start.Add(-time.Hour))
	body["max_per_user"] = 101
	org.Must(400, "POST", "/api/events/"+eventID+"/ticket-types", body)
	body["max_per_user"] = 2
	created := org.Must(201, "POST", "/api/events/"+eventID+"/ticket-types", body)
	if created.JSON["max_per_user"] != float64(2) {
		t.Fatalf("created type: %s", created.Body)
	}
	typeID := created.JSON["id"].(string)
	purchase := "/api/events/" + eventID + "/tickets"

	first := ann.Must(201, "POST", purchase, map[string]string{"ticket_type_id": typeID}, "Idempotency-Key", "ann-1")
	const n = 20
	statuses := make([]int, n)
	codes := make([]any, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := ann.Do("POST", purchase, map[string]string{"ticket_type_id": typeID})
			statuses[i], codes[i] = r.Status, r.JSON["code"]
		}()
	}
	wg.Wait()
	sold := 0
	for i := range n {
		switch {
		case statuses[i] == http.StatusCreated:
			sold++
		case statuses[i] != http.StatusConflict || codes[i] != "purchase_limit_reached":
			t.Fatalf("purchase %d: %d %v", i, statuses[i], codes[i])
		}
	}
	if sold != 1 {
		t.Fatalf("%d of the concurrent purchases sold, want 1 (the limit is 2, one bought before)", sold)
	}
	if replay := ann.Must(201, "POST", purchase, map[string]string{"ticket_type_id": typeID}, "Idempotency-Key", "ann-1"); replay.JSON["id"] != first.JSON["id"] {
		t.Fatalf("replay at the limit: %s", replay.Body)
	}
	if mine := platform.Items(ann.Must(200, "GET", "/api/tickets", nil)); len(mine) != 2 {
		t.Fatalf("ann holds %d tickets, want 2", len(mine))
	}
	bob.Must(201, "POST", purchase, map[string]string{"ticket_type_id": typeID})
	for _, tt := range platform.Items(p.Anonymous().Must(200, "GET", "/api/events/"+eventID+"/ticket-types", nil)) {
		if tt["sold"] != float64(3) || tt["max_per_user"] != float64(2) {
			t.Fatalf("type after the sale: %v", tt)
		}
	}
}
