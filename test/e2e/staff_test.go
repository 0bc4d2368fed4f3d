package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sbor-dev/sbor/test/platform"
)

// TestDoorStaffAndLiveCounts (issue 10): an organizer grants door staff by email; staff
// validate and check in that event's tickets and no other's; a revoked member is refused at
// once; the live counts follow purchases and check-ins.
func TestDoorStaffAndLiveCounts(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	org, rival := p.Organizer("Olga"), p.Organizer("Oscar")
	door, buyer := p.SignUp("Dora"), p.SignUp("Bea")

	start := time.Now().Add(7 * 24 * time.Hour).Truncate(time.Second)
	publish := func(c *platform.Client, title string) (eventID, typeID string) {
		eventID = c.Must(201, "POST", "/api/events", newEvent(title, start)).JSON["id"].(string)
		c.Must(200, "POST", "/api/events/"+eventID+"/publish", nil)
		typeID = c.Must(201, "POST", "/api/events/"+eventID+"/ticket-types", ticketType("standard", 50, start.Add(-time.Hour))).JSON["id"].(string)
		return eventID, typeID
	}
	eventA, typeA := publish(org, "Door night")
	eventB, typeB := publish(rival, "Rival night")
	staffA := "/api/events/" + eventA + "/staff"

	// Grant by email (case does not matter); again is 200 with the same grant.
	g := org.Must(201, "POST", staffA, map[string]string{"email": strings.ToUpper(door.Email)})
	if g.JSON["user_id"] != door.UserID || g.JSON["email"] != door.Email {
		t.Fatalf("grant: %s", g.Body)
	}
	if again := org.Must(200, "POST", staffA, map[string]string{"email": door.Email}); string(again.Body) != string(g.Body) {
		t.Errorf("second grant: %s, want %s", again.Body, g.Body)
	}
	if r := org.Must(422, "POST", staffA, map[string]string{"email": "nobody-" + platform.RandomHex(3) + "@example.com"}); r.JSON["code"] != "user_not_found" {
		t.Errorf("unknown email: %s", r.Body)
	}
	if r := org.Must(422, "POST", staffA, map[string]string{"email": org.Email}); r.JSON["code"] != "cannot_grant_self" {
		t.Errorf("own email: %s", r.Body)
	}
	rival.Must(404, "POST", staffA, map[string]string{"email": door.Email})
	door.Must(404, "GET", staffA, nil)
	if items := platform.Items(org.Must(200, "GET", staffA, nil)); len(items) != 1 || items[0]["user_id"] != door.UserID {
		t.Fatalf("staff list: %v", items)
	}

	// The scanner's list: door sees event A as staff.
	if items := platform.Items(door.Must(200, "GET", "/api/staff/events", nil)); len(items) != 1 || items[0]["event_id"] != eventA || items[0]["role"] != "staff" {
		t.Fatalf("door's events: %v", items)
	}

	// Purchases: three of A, one of B.
	var codes []string
	for range 3 {
		codes = append(codes, buyer.Must(201, "POST", "/api/events/"+eventA+"/tickets", map[string]string{"ticket_type_id": typeA}).JSON["code"].(string))
	}
	codeB := buyer.Must(201, "POST", "/api/events/"+eventB+"/tickets", map[string]string{"ticket_type_id": typeB}).JSON["code"].(string)

	// Staff validate and check in A's tickets; B's are refused.
	if r := door.Must(200, "POST", "/api/tickets/"+codes[0]+"/validate", nil); r.JSON["valid"] != true {
		t.Fatalf("validate by staff: %s", r.Body)
	}
	if r := door.Must(200, "POST", "/api/tickets/"+codes[0]+"/checkin", nil); r.JSON["status"] != "used" {
		t.Fatalf("check-in by staff: %s", r.Body)
	}
	door.Must(409, "POST", "/api/tickets/"+codes[0]+"/checkin", nil)
	door.Must(403, "POST", "/api/tickets/"+codeB+"/validate", nil)
	door.Must(403, "POST", "/api/tickets/"+codeB+"/checkin", nil)
	door.Must(403, "GET", "/api/events/"+eventA+"/tickets", nil) // the attendee list stays the organizer's

	// Live counts, for the organizer and staff; they follow within the refresh interval.
	statsA := "/api/events/" + eventA + "/stats"
	waitCounts := func(c *platform.Client, sold, checkedIn int) {
		t.Helper()
		platform.Eventually(t, 10*time.Second, "the counts to reach sold "+strconv.Itoa(sold)+", checked in "+strconv.Itoa(checkedIn), func() bool {
			r := c.Must(200, "GET", statsA, nil)
			types, _ := r.JSON["ticket_types"].([]any)
			return r.JSON["sold"] == float64(sold) && r.JSON["checked_in"] == float64(checkedIn) &&
				r.JSON["remaining"] == float64(50-sold) && len(types) == 1 &&
				types[0].(map[string]any)["checked_in"] == float64(checkedIn)
		})
	}
	waitCounts(org, 3, 1)
	waitCounts(door, 3, 1)
	buyer.Must(404, "GET", statsA, nil)
	rival.Must(404, "GET", statsA, nil)
	org.Must(200, "POST", "/api/tickets/"+codes[1]+"/checkin", nil)
	buyer.Must(201, "POST", "/api/events/"+eventA+"/tickets", map[string]string{"ticket_type_id": typeA})
	waitCounts(door, 4, 2)

	// Revoke: the member's next check-in is refused at once; revoking again is 204.
	org.Must(204, "DELETE", staffA+"/"+door.UserID, nil)
	org.Must(204, "DELETE", staffA+"/"+door.UserID, nil)
	door.Must(403, "POST", "/api/tickets/"+codes[2]+"/checkin", nil)
	door.Must(403, "POST", "/api/tickets/"+codes[2]+"/validate", nil)
	if items := platform.Items(door.Must(200, "GET", "/api/staff/events", nil)); len(items) != 0 {
		t.Errorf("door's events after revocation: %v", items)
	}
	platform.Eventually(t, 10*time.Second, "a revoked member to lose the counts", func() bool {
		return door.Do("GET", statsA, nil).Status == 404
	})
	org.Must(200, "POST", "/api/tickets/"+codes[2]+"/checkin", nil) // the ticket was left untouched
}
