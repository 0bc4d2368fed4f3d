package security

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sbor-dev/sbor/services/gateway"
	"github.com/sbor-dev/sbor/test/platform"
)

// The actors of the authorization matrix.
const (
	anon   = iota // no token
	user          // a plain user who owns nothing of it
	other         // an organizer who does not own it
	owner         // the resource's owner: the event's organizer, the ticket's or notification's holder
	forged        // no token, but X-User-ID and X-User-Role claiming to be the owner
	staff         // a plain user who is door staff of the row's event (issue 10), where it has one
	actors
)

var actorNames = [actors]string{"anonymous", "user", "other organizer", "owner", "forged headers", "door staff"}

// world is what the matrix acts on: its people and a pool of fresh resources.
type world struct {
	t *testing.T
	p *platform.Platform
	// org owns the events; holder owns the tickets and notifications; ann is a plain
	// user; oscar is another organizer; door is a plain user whom org makes door staff of
	// each row's event (target.event) before door acts on it.
	org, holder, ann, oscar, door *caller
}

// target is one request of a matrix row: its path and body, made fresh for each actor so
// that no actor's request changes what the next one meets.
type target struct {
	path string
	body any
	// owner is who the route's owner is for this resource.
	owner *caller
	// event is the published event of w.org the resource belongs to, if any: the staff
	// actor is granted door staff of it before acting.
	event string
}

// authzRow is one line of the matrix. The method and pattern are exactly those of
// gateway.Routes; the test fails if a route has no row.
type authzRow struct {
	method, pattern string
	// variant tells rows of one route apart (a draft, a published event).
	variant string
	target  func(w *world) target
	want    [actors]int
}

// authzTable is the authorization matrix of the public API: every route × every actor →
// the status the caller must get.
var authzTable = []authzRow{
	{"POST", "/api/auth/register", "", func(w *world) target {
		return target{path: "/api/auth/register", body: map[string]string{
			"email": "reg-" + platform.RandomHex(5) + "@example.com", "name": "Reg", "password": password}}
	}, [actors]int{201, 201, 201, 201, 201, 201}},
	{"POST", "/api/auth/login", "", func(w *world) target {
		return target{path: "/api/auth/login", body: map[string]string{"email": w.holder.email, "password": password}}
	}, [actors]int{200, 200, 200, 200, 200, 200}},
	{"POST", "/api/auth/refresh", "", func(w *world) target {
		r := anonymous(w.p).must(w.t, 200, "POST", "/api/auth/login", map[string]string{"email": w.holder.email, "password": password})
		return target{path: "/api/auth/refresh", body: map[string]any{"refresh_token": r.JSON["refresh_token"]}}
	}, [actors]int{200, 200, 200, 200, 200, 200}},
	{"POST", "/api/auth/logout", "", func(w *world) target {
		r := anonymous(w.p).must(w.t, 200, "POST", "/api/auth/login", map[string]string{"email": w.holder.email, "password": password})
		return target{path: "/api/auth/logout", body: map[string]any{"refresh_token": r.JSON["refresh_token"]}}
	}, [actors]int{204, 204, 204, 204, 204, 204}},
	{"GET", "/api/users/me", "", func(w *world) target {
		return target{path: "/api/users/me", owner: w.holder}
	}, [actors]int{401, 200, 200, 200, 401, 200}},
	{"POST", "/api/users/me/become-organizer", "", func(w *world) target {
		return target{path: "/api/users/me/become-organizer", owner: w.oscar}
	}, [actors]int{401, 200, 200, 200, 401, 200}},

	{"GET", "/api/events", "", func(w *world) target {
		return target{path: "/api/events"}
	}, [actors]int{200, 200, 200, 200, 200, 200}},
	{"GET", "/api/events", "organizer=me", func(w *world) target {
		return target{path: "/api/events?organizer=me"}
	}, [actors]int{401, 200, 200, 200, 401, 200}},
	{"POST", "/api/events", "", func(w *world) target {
		return target{path: "/api/events", body: eventBody("New", eventStart)}
	}, [actors]int{401, 403, 201, 201, 401, 403}},
	{"GET", "/api/events/{id}", "draft", func(w *world) target {
		return target{path: "/api/events/" + draft(w.t, w.org)}
	}, [actors]int{404, 404, 404, 200, 404, 404}},
	{"GET", "/api/events/{id}", "published", func(w *world) target {
		id, _ := published(w.t, w.org)
		return target{path: "/api/events/" + id, event: id}
	}, [actors]int{200, 200, 200, 200, 200, 200}},
	{"PUT", "/api/events/{id}", "draft", func(w *world) target {
		return target{path: "/api/events/" + draft(w.t, w.org), body: eventBody("Edited", eventStart)}
	}, [actors]int{401, 403, 403, 200, 401, 403}},
	{"POST", "/api/events/{id}/publish", "draft", func(w *world) target {
		return target{path: "/api/events/" + draft(w.t, w.org) + "/publish"}
	}, [actors]int{401, 403, 403, 200, 401, 403}},
	{"POST", "/api/events/{id}/cancel", "published", func(w *world) target {
		id, _ := published(w.t, w.org)
		return target{path: "/api/events/" + id + "/cancel", event: id}
	}, [actors]int{401, 403, 403, 200, 401, 403}},

	{"GET", "/api/events/{id}/ticket-types", "", func(w *world) target {
		id, _ := published(w.t, w.org)
		return target{path: "/api/events/" + id + "/ticket-types", event: id}
	}, [actors]int{200, 200, 200, 200, 200, 200}},
	{"POST", "/api/events/{id}/ticket-types", "", func(w *world) target {
		id := draft(w.t, w.org)
		w.org.must(w.t, 200, "POST", "/api/events/"+id+"/publish", nil)
		return target{path: "/api/events/" + id + "/ticket-types", body: ticketTypeBody("vip", 10, eventStart.Add(-time.Hour)), event: id}
	}, [actors]int{401, 403, 403, 201, 401, 403}},
	{"GET", "/api/events/{id}/tickets", "", func(w *world) target {
		id, typeID := published(w.t, w.org)
		buy(w.t, w.holder, id, typeID)
		return target{path: "/api/events/" + id + "/tickets", event: id}
	}, [actors]int{401, 403, 403, 200, 401, 403}},
	{"POST", "/api/events/{id}/tickets", "", func(w *world) target {
		id, typeID := published(w.t, w.org)
		return target{path: "/api/events/" + id + "/tickets", body: map[string]string{"ticket_type_id": typeID}, event: id}
	}, [actors]int{401, 201, 201, 201, 401, 201}},
	{"GET", "/api/tickets", "", func(w *world) target {
		return target{path: "/api/tickets", owner: w.holder}
	}, [actors]int{401, 200, 200, 200, 401, 200}},
	{"GET", "/api/tickets/{id}/qr", "", func(w *world) target {
		id, typeID := published(w.t, w.org)
		ticketID, _ := buy(w.t, w.holder, id, typeID)
		return target{path: "/api/tickets/" + ticketID + "/qr", owner: w.holder, event: id}
	}, [actors]int{401, 404, 404, 200, 401, 404}},
	// Ticket transfer (issue 10): only the holder may give a ticket away; anyone else, door
	// staff included, learns nothing of it (404).
	{"POST", "/api/tickets/{id}/transfer", "", func(w *world) target {
		id, typeID := published(w.t, w.org)
		ticketID, _ := buy(w.t, w.holder, id, typeID)
		return target{path: "/api/tickets/" + ticketID + "/transfer", body: map[string]string{"email": w.ann.email}, owner: w.holder, event: id}
	}, [actors]int{401, 404, 404, 200, 401, 404}},
	{"POST", "/api/tickets/{id}/validate", "", func(w *world) target {
		id, typeID := published(w.t, w.org)
		_, code := buy(w.t, w.holder, id, typeID)
		return target{path: "/api/tickets/" + code + "/validate", event: id}
	}, [actors]int{401, 403, 403, 200, 401, 200}},
	{"POST", "/api/tickets/{id}/checkin", "", func(w *world) target {
		id, typeID := published(w.t, w.org)
		_, code := buy(w.t, w.holder, id, typeID)
		return target{path: "/api/tickets/" + code + "/checkin", event: id}
	}, [actors]int{401, 403, 403, 200, 401, 200}},

	// Door staff and live counts (issue 10): the organizer manages staff; staff see the
	// counts but cannot manage staff; everyone else gets 404.
	{"GET", "/api/events/{id}/staff", "", func(w *world) target {
		id, _ := published(w.t, w.org)
		return target{path: "/api/events/" + id + "/staff", event: id}
	}, [actors]int{401, 404, 404, 200, 401, 404}},
	{"POST", "/api/events/{id}/staff", "", func(w *world) target {
		id, _ := published(w.t, w.org)
		return target{path: "/api/events/" + id + "/staff", body: map[string]string{"email": w.ann.email}, event: id}
	}, [actors]int{401, 404, 404, 201, 401, 404}},
	{"DELETE", "/api/events/{id}/staff/{user_id}", "", func(w *world) target {
		id, _ := published(w.t, w.org)
		w.org.must(w.t, 201, "POST", "/api/events/"+id+"/staff", map[string]string{"email": w.ann.email})
		return target{path: "/api/events/" + id + "/staff/" + w.ann.userID, event: id}
	}, [actors]int{401, 404, 404, 204, 401, 404}},
	{"GET", "/api/staff/events", "", func(w *world) target {
		id, _ := published(w.t, w.org)
		return target{path: "/api/staff/events", event: id}
	}, [actors]int{401, 200, 200, 200, 401, 200}},
	{"GET", "/api/events/{id}/stats", "", func(w *world) target {
		id, typeID := published(w.t, w.org)
		buy(w.t, w.holder, id, typeID)
		return target{path: "/api/events/" + id + "/stats", event: id}
	}, [actors]int{401, 404, 404, 200, 401, 200}},
	// Signed ticket codes (issue 10): the scanner's keys and revocations are the organizer's
	// and staff's; validate and check-in take the signed code as they take the plain one.
	{"GET", "/api/events/{id}/scanner-keys", "", func(w *world) target {
		id, _ := published(w.t, w.org)
		return target{path: "/api/events/" + id + "/scanner-keys", event: id}
	}, [actors]int{401, 404, 404, 200, 401, 200}},
	{"GET", "/api/events/{id}/revocations", "", func(w *world) target {
		id, typeID := published(w.t, w.org)
		buy(w.t, w.holder, id, typeID)
		return target{path: "/api/events/" + id + "/revocations?since=0", event: id}
	}, [actors]int{401, 404, 404, 200, 401, 200}},
	{"POST", "/api/tickets/{id}/validate", "signed code", func(w *world) target {
		id, typeID := published(w.t, w.org)
		return target{path: "/api/tickets/" + signedCode(w.t, w.holder, id, typeID) + "/validate", event: id}
	}, [actors]int{401, 403, 403, 200, 401, 200}},
	{"POST", "/api/tickets/{id}/checkin", "signed code", func(w *world) target {
		id, typeID := published(w.t, w.org)
		return target{path: "/api/tickets/" + signedCode(w.t, w.holder, id, typeID) + "/checkin", event: id}
	}, [actors]int{401, 403, 403, 200, 401, 200}},

	{"GET", "/api/notifications", "", func(w *world) target {
		return target{path: "/api/notifications", owner: w.holder}
	}, [actors]int{401, 200, 200, 200, 401, 200}},
	{"GET", "/api/notifications/unread-count", "", func(w *world) target {
		return target{path: "/api/notifications/unread-count", owner: w.holder}
	}, [actors]int{401, 200, 200, 200, 401, 200}},
	{"POST", "/api/notifications/{id}/read", "", func(w *world) target {
		return target{path: "/api/notifications/" + w.freshNotification() + "/read", owner: w.holder}
	}, [actors]int{401, 404, 404, 200, 401, 404}},
}

// signedCode buys a ticket and returns its signed code.
func signedCode(t *testing.T, c *caller, eventID, typeID string) string {
	t.Helper()
	r := c.must(t, 201, "POST", "/api/events/"+eventID+"/tickets", map[string]string{"ticket_type_id": typeID})
	code, _ := r.JSON["signed_code"].(string)
	if code == "" {
		t.Fatalf("no signed_code in %v", r.JSON)
	}
	return code
}

// freshNotification buys a ticket for the holder and returns the id of its notification.
func (w *world) freshNotification() string {
	w.t.Helper()
	eventID, typeID := published(w.t, w.org)
	ticketID, _ := buy(w.t, w.holder, eventID, typeID)
	var id string
	platform.Eventually(w.t, 20*time.Second, "the purchase notification", func() bool {
		for _, n := range items(w.holder.must(w.t, 200, "GET", "/api/notifications?limit=100", nil)) {
			if n["ticket_id"] == ticketID {
				id = n["id"].(string)
				return true
			}
		}
		return false
	})
	return id
}

// testAuthorizationMatrix runs every row of authzTable for every actor.
func testAuthorizationMatrix(t *testing.T, p *platform.Platform) {
	// Every public route has a row.
	covered := map[string]bool{}
	for _, row := range authzTable {
		covered[row.method+" "+row.pattern] = true
	}
	for _, rt := range gateway.Routes {
		if !covered[rt.Method+" "+rt.Pattern] {
			t.Errorf("gateway route %s %s has no row in the authorization matrix", rt.Method, rt.Pattern)
		}
	}

	w := &world{t: t, p: p}
	w.org = organizer(t, p, "Olga")
	w.oscar = organizer(t, p, "Oscar")
	w.holder = signUp(t, p, "Hana")
	w.ann = signUp(t, p, "Ann")
	w.door = signUp(t, p, "Dora")

	var lines []string
	for _, row := range authzTable {
		name := row.method + " " + row.pattern
		if row.variant != "" {
			name += " (" + row.variant + ")"
		}
		got := [actors]int{}
		for a := range actors {
			tg := row.target(w)
			who := tg.owner
			if who == nil {
				who = w.org
			}
			var c *caller
			switch a {
			case anon:
				c = anonymous(p)
			case user:
				c = w.ann
			case other:
				c = w.oscar
				if who == w.oscar { // oscar is the owner of his own account: use another organizer
					c = w.org
				}
			case owner:
				c = who
			case staff:
				c = w.door
				if tg.event != "" {
					w.org.must(t, 201, "POST", "/api/events/"+tg.event+"/staff", map[string]string{"email": w.door.email})
				}
			case forged:
				c = &caller{p: p, name: "forged", headers: map[string]string{
					"X-User-ID": who.userID, "X-User-Role": "organizer", "x-user-id": who.userID,
					"X-Request-ID": "forged-request", "Forwarded": "for=10.0.0.1",
				}}
			}
			r := c.send(row.method, tg.path, tg.body)
			if r.Err != nil {
				t.Fatalf("%s as %s: %v", name, actorNames[a], r.Err)
			}
			got[a] = r.Status
			checkProblem(t, name+" as "+actorNames[a], r)
			if r.Status != row.want[a] {
				t.Errorf("%s as %s: %d, want %d: %.300s", name, actorNames[a], r.Status, row.want[a], r.Body)
			}
			if a == forged && strings.Contains(string(r.Body), who.userID) && row.want[a] >= 400 {
				t.Errorf("%s with forged headers leaked the owner's data: %.300s", name, r.Body)
			}
		}
		lines = append(lines, fmt.Sprintf("%-48s %v", name, got))
	}
	t.Logf("authorization matrix (anonymous, user, other organizer, owner, forged headers, door staff):\n%s", strings.Join(lines, "\n"))
}
