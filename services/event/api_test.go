package event_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/services/event"
)

// TestRouteStatuses checks every route's statuses (DESIGN.md section 3) for each kind of
// caller and each state of the event, through event.Run as the gateway calls it.
func TestRouteStatuses(t *testing.T) {
	t.Parallel()
	s := startService(t, event.Config{})
	owner, other, user := organizer(), organizer(), plainUser()
	callers := map[string]*identity.Identity{"anon": nil, "owner": owner, "other": other, "user": user}

	// fixtures make a fresh event of owner in a given state and return its id.
	fixtures := map[string]func() string{
		"none":      func() string { return "" },
		"unknown":   func() string { return uuid.NewString() },
		"malformed": func() string { return "not-a-uuid" },
		"draft":     func() string { return s.create(owner, "Draft", 48*time.Hour) },
		"published": func() string { return s.published(owner, "Published", 48*time.Hour) },
		"cancelled": func() string {
			id := s.published(owner, "Cancelled", 48*time.Hour)
			s.must(http.StatusOK, "POST", "/api/events/"+id+"/cancel", nil, owner)
			return id
		},
		"cancelled-draft": func() string {
			id := s.create(owner, "Cancelled draft", 48*time.Hour)
			s.must(http.StatusOK, "POST", "/api/events/"+id+"/cancel", nil, owner)
			return id
		},
		"started-draft": func() string {
			id := s.create(owner, "Started", 48*time.Hour)
			s.exec(`UPDATE events SET starts_at = now() - interval '1 hour', ends_at = now() + interval '1 hour' WHERE id = $1`, id)
			return id
		},
	}
	valid := eventBody("Updated title", 72*time.Hour)
	past := eventBody("Past", -time.Hour)

	cases := []struct {
		method, path, fixture, as string
		body                      any
		want                      int
		code                      string
	}{
		// flow 4: create
		{"POST", "/api/events", "none", "anon", valid, 401, "unauthenticated"},
		{"POST", "/api/events", "none", "user", valid, 403, "organizer_required"},
		{"POST", "/api/events", "none", "owner", valid, 201, ""},
		{"POST", "/api/events", "none", "owner", past, 400, "validation_failed"},
		{"POST", "/api/events", "none", "owner", map[string]any{"title": " "}, 400, "validation_failed"},
		{"POST", "/api/events", "none", "owner", `{"title": "x",`, 400, "malformed_json"},
		{"POST", "/api/events", "none", "owner", `{"title": "x", "price": 1}`, 400, "malformed_json"},
		{"POST", "/api/events", "none", "owner", `{"title": "x", "starts_at": "tomorrow"}`, 400, "malformed_json"},

		// lists
		{"GET", "/api/events", "none", "anon", nil, 200, ""},
		{"GET", "/api/events?organizer=me", "none", "anon", nil, 401, "unauthenticated"},
		{"GET", "/api/events?organizer=me", "none", "user", nil, 200, ""},
		{"GET", "/api/events?organizer=someone", "none", "owner", nil, 400, "invalid_organizer"},
		{"GET", "/api/events?cursor=garbage", "none", "anon", nil, 400, "invalid_cursor"},
		{"GET", "/api/events?limit=0", "none", "anon", nil, 400, "invalid_limit"},
		{"GET", "/api/events?limit=101", "none", "anon", nil, 400, "invalid_limit"},
		{"GET", "/api/events?limit=ten", "none", "anon", nil, 400, "invalid_limit"},

		// read one
		{"GET", "/api/events/{id}", "published", "anon", nil, 200, ""},
		{"GET", "/api/events/{id}", "draft", "owner", nil, 200, ""},
		{"GET", "/api/events/{id}", "draft", "other", nil, 404, "event_not_found"},
		{"GET", "/api/events/{id}", "draft", "anon", nil, 404, "event_not_found"},
		{"GET", "/api/events/{id}", "cancelled", "anon", nil, 200, ""},
		{"GET", "/api/events/{id}", "cancelled-draft", "other", nil, 404, "event_not_found"},
		{"GET", "/api/events/{id}", "cancelled-draft", "owner", nil, 200, ""},
		{"GET", "/api/events/{id}", "unknown", "anon", nil, 404, "event_not_found"},
		{"GET", "/api/events/{id}", "malformed", "anon", nil, 404, "event_not_found"},

		// flow 5: update
		{"PUT", "/api/events/{id}", "draft", "owner", valid, 200, ""},
		{"PUT", "/api/events/{id}", "draft", "anon", valid, 401, "unauthenticated"},
		{"PUT", "/api/events/{id}", "draft", "other", valid, 403, "not_owner"},
		{"PUT", "/api/events/{id}", "draft", "user", valid, 403, "not_owner"},
		{"PUT", "/api/events/{id}", "draft", "other", past, 403, "not_owner"},
		{"PUT", "/api/events/{id}", "draft", "owner", past, 400, "validation_failed"},
		{"PUT", "/api/events/{id}", "draft", "owner", `[]`, 400, "malformed_json"},
		{"PUT", "/api/events/{id}", "published", "owner", valid, 409, "not_draft"},
		{"PUT", "/api/events/{id}", "published", "other", valid, 403, "not_owner"},
		{"PUT", "/api/events/{id}", "cancelled", "owner", valid, 409, "not_draft"},
		{"PUT", "/api/events/{id}", "unknown", "owner", valid, 404, "event_not_found"},
		{"PUT", "/api/events/{id}", "malformed", "owner", valid, 404, "event_not_found"},

		// flow 6: publish
		{"POST", "/api/events/{id}/publish", "draft", "owner", nil, 200, ""},
		{"POST", "/api/events/{id}/publish", "draft", "anon", nil, 401, "unauthenticated"},
		{"POST", "/api/events/{id}/publish", "draft", "other", nil, 403, "not_owner"},
		{"POST", "/api/events/{id}/publish", "draft", "user", nil, 403, "not_owner"},
		{"POST", "/api/events/{id}/publish", "published", "owner", nil, 409, "not_draft"},
		{"POST", "/api/events/{id}/publish", "cancelled", "owner", nil, 409, "not_draft"},
		{"POST", "/api/events/{id}/publish", "started-draft", "owner", nil, 409, "event_started"},
		{"POST", "/api/events/{id}/publish", "unknown", "owner", nil, 404, "event_not_found"},
		{"POST", "/api/events/{id}/publish", "malformed", "owner", nil, 404, "event_not_found"},

		// flow 13: cancel
		{"POST", "/api/events/{id}/cancel", "published", "owner", nil, 200, ""},
		{"POST", "/api/events/{id}/cancel", "draft", "owner", nil, 200, ""},
		{"POST", "/api/events/{id}/cancel", "published", "anon", nil, 401, "unauthenticated"},
		{"POST", "/api/events/{id}/cancel", "published", "other", nil, 403, "not_owner"},
		{"POST", "/api/events/{id}/cancel", "draft", "other", nil, 403, "not_owner"},
		{"POST", "/api/events/{id}/cancel", "cancelled", "owner", nil, 409, "already_cancelled"},
		{"POST", "/api/events/{id}/cancel", "cancelled", "other", nil, 403, "not_owner"},
		{"POST", "/api/events/{id}/cancel", "unknown", "owner", nil, 404, "event_not_found"},
		{"POST", "/api/events/{id}/cancel", "malformed", "owner", nil, 404, "event_not_found"},

		// internal routes
		{"GET", "/internal/events/{id}", "draft", "anon", nil, 200, ""},
		{"GET", "/internal/events/{id}", "cancelled", "anon", nil, 200, ""},
		{"GET", "/internal/events/{id}", "unknown", "anon", nil, 404, "event_not_found"},
		{"GET", "/internal/events/{id}", "malformed", "anon", nil, 404, "event_not_found"},
		{"POST", "/internal/events/{id}/remind", "published", "anon", nil, 200, ""},
		{"POST", "/internal/events/{id}/remind", "draft", "anon", nil, 409, "not_published"},
		{"POST", "/internal/events/{id}/remind", "cancelled", "anon", nil, 409, "not_published"},
		{"POST", "/internal/events/{id}/remind", "unknown", "anon", nil, 404, "event_not_found"},
		{"POST", "/internal/events/{id}/remind", "malformed", "anon", nil, 404, "event_not_found"},

		// routes that do not exist
		{"DELETE", "/api/events/{id}", "draft", "owner", nil, 405, "method_not_allowed"},
		{"GET", "/api/events/{id}/nope", "draft", "owner", nil, 404, "route_not_found"},
	}
	for _, tc := range cases {
		name := tc.method + " " + tc.path + " " + tc.fixture + " as " + tc.as
		t.Run(name, func(t *testing.T) {
			id := fixtures[tc.fixture]()
			var before int
			if id != "" {
				before = len(s.outbox(id))
			}
			r := s.do(tc.method, strings.ReplaceAll(tc.path, "{id}", id), tc.body, callers[tc.as])
			if r.status != tc.want {
				t.Fatalf("got %d, want %d: %s", r.status, tc.want, r.raw)
			}
			if tc.code != "" && r.str("code") != tc.code {
				t.Fatalf("code %q, want %q: %s", r.str("code"), tc.code, r.raw)
			}
			if r.status >= 400 && id != "" {
				if after := len(s.outbox(id)); after != before {
					t.Fatalf("a refused request wrote %d outbox rows", after-before)
				}
			}
		})
	}
}

func TestCreateAndRead(t *testing.T) {
	t.Parallel()
	s := startService(t, event.Config{})
	owner := organizer()
	start := time.Now().Add(36 * time.Hour).Truncate(time.Second)
	// Times in another zone come back in UTC.
	moscow := time.FixedZone("MSK", 3*3600)
	r := s.must(http.StatusCreated, "POST", "/api/events", map[string]any{
		"title": "  Go meetup  ", "description": "Talks\nand pizza", "venue": " Hall 2 ",
		"starts_at": start.In(moscow).Format(time.RFC3339), "ends_at": start.Add(3 * time.Hour).In(moscow).Format(time.RFC3339),
	}, owner)
	id := r.str("id")
	if r.header.Get("Location") != "/api/events/"+id {
		t.Fatalf("Location %q", r.header.Get("Location"))
	}
	want := map[string]string{
		"title": "Go meetup", "description": "Talks\nand pizza", "venue": "Hall 2", "status": "draft",
		"organizer_id": owner.UserID.String(),
		"starts_at":    start.UTC().Format(time.RFC3339), "ends_at": start.Add(3 * time.Hour).UTC().Format(time.RFC3339),
	}
	for k, v := range want {
		if r.str(k) != v {
			t.Errorf("%s = %q, want %q", k, r.str(k), v)
		}
	}
	if len(r.body) != 8 {
		t.Errorf("event has fields %v, want exactly DESIGN.md's eight", r.body)
	}
	if got := s.outbox(id); len(got) != 0 {
		t.Errorf("creating a draft announced %v", topics(got))
	}

	got := s.must(http.StatusOK, "GET", "/api/events/"+id, nil, owner)
	if string(got.raw) != string(r.raw) {
		t.Errorf("GET differs from create:\n%s\n%s", got.raw, r.raw)
	}

	internal := s.must(http.StatusOK, "GET", "/internal/events/"+id, nil, nil)
	for _, k := range []string{"id", "organizer_id", "title", "description", "venue", "starts_at", "ends_at", "status"} {
		if internal.body[k] != r.body[k] {
			t.Errorf("internal %s = %v, want %v", k, internal.body[k], r.body[k])
		}
	}
	if internal.body["version"] != float64(1) || len(internal.body) != 9 {
		t.Errorf("internal event: %s", internal.raw)
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	s := startService(t, event.Config{})
	owner := organizer()
	in := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(time.RFC3339Nano) }
	body := func(change map[string]any) map[string]any {
		b := map[string]any{"title": "T", "description": "", "venue": "", "starts_at": in(time.Hour), "ends_at": in(2 * time.Hour)}
		for k, v := range change {
			if v == nil {
				delete(b, k)
			} else {
				b[k] = v
			}
		}
		return b
	}
	same := in(5 * time.Hour)
	cases := []struct {
		name   string
		change map[string]any
		field  string // "" means valid
	}{
		{"minimal", nil, ""},
		{"title of 200 characters", map[string]any{"title": strings.Repeat("я", 200)}, ""},
		{"title of 201 characters", map[string]any{"title": strings.Repeat("я", 201)}, "title"},
		{"empty title", map[string]any{"title": ""}, "title"},
		{"blank title", map[string]any{"title": " \t "}, "title"},
		{"missing title", map[string]any{"title": nil}, "title"},
		{"control character in title", map[string]any{"title": "a\x07b"}, "title"},
		{"description of 5000", map[string]any{"description": strings.Repeat("d", 5000)}, ""},
		{"description of 5001", map[string]any{"description": strings.Repeat("d", 5001)}, "description"},
		{"control character in description", map[string]any{"description": "a\x00b"}, "description"},
		{"venue of 300", map[string]any{"venue": strings.Repeat("v", 300)}, ""},
		{"venue of 301", map[string]any{"venue": strings.Repeat("v", 301)}, "venue"},
		{"newline in venue", map[string]any{"venue": "a\nb"}, "venue"},
		{"missing starts_at", map[string]any{"starts_at": nil}, "starts_at"},
		{"start in the past", map[string]any{"starts_at": in(-time.Minute)}, "starts_at"},
		{"start too far ahead", map[string]any{"starts_at": "9999-01-01T00:00:00Z", "ends_at": "9999-01-02T00:00:00Z"}, "starts_at"},
		{"missing ends_at", map[string]any{"ends_at": nil}, "ends_at"},
		{"end before start", map[string]any{"ends_at": in(30 * time.Minute)}, "ends_at"},
		{"end equal to start", map[string]any{"starts_at": same, "ends_at": same}, "ends_at"},
	}
	draft := s.create(owner, "Draft", 24*time.Hour)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, req := range []struct{ method, path string }{{"POST", "/api/events"}, {"PUT", "/api/events/" + draft}} {
				r := s.do(req.method, req.path, body(tc.change), owner)
				if tc.field == "" {
					if r.status != http.StatusCreated && r.status != http.StatusOK {
						t.Fatalf("%s: %d %s", req.method, r.status, r.raw)
					}
					continue
				}
				if r.status != http.StatusBadRequest {
					t.Fatalf("%s: got %d, want 400: %s", req.method, r.status, r.raw)
				}
				fields, _ := r.body["errors"].([]any)
				if len(fields) == 0 || fields[0].(map[string]any)["field"] != tc.field {
					t.Fatalf("%s: field errors %v, want %s", req.method, r.body["errors"], tc.field)
				}
			}
		})
	}
}

func TestUpdatePublishCancelLifecycle(t *testing.T) {
	t.Parallel()
	s := startService(t, event.Config{})
	owner := organizer()
	id := s.create(owner, "Draft", 48*time.Hour)

	upd := s.must(http.StatusOK, "PUT", "/api/events/"+id, eventBody("  Renamed ", 72*time.Hour), owner)
	if upd.str("title") != "Renamed" || upd.str("status") != "draft" {
		t.Fatalf("update: %s", upd.raw)
	}
	pub := s.must(http.StatusOK, "POST", "/api/events/"+id+"/publish", nil, owner)
	if pub.str("status") != "published" || pub.str("title") != "Renamed" {
		t.Fatalf("publish: %s", pub.raw)
	}
	// Anyone sees it now, and it is listed.
	s.must(http.StatusOK, "GET", "/api/events/"+id, nil, nil)
	list := s.must(http.StatusOK, "GET", "/api/events", nil, nil)
	if items := list.body["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != id {
		t.Fatalf("list: %s", list.raw)
	}
	can := s.must(http.StatusOK, "POST", "/api/events/"+id+"/cancel", nil, owner)
	if can.str("status") != "cancelled" {
		t.Fatalf("cancel: %s", can.raw)
	}
	// Cancelled events are not listed, but stay readable for ticket holders.
	list = s.must(http.StatusOK, "GET", "/api/events", nil, nil)
	if items := list.body["items"].([]any); len(items) != 0 {
		t.Fatalf("list after cancel: %s", list.raw)
	}
	if got := s.must(http.StatusOK, "GET", "/api/events/"+id, nil, nil); got.str("status") != "cancelled" {
		t.Fatalf("get after cancel: %s", got.raw)
	}

	// One message per change, in order, each with the event as the change left it.
	rows := s.outbox(id)
	wantTopics := []string{"event.updated", "event.published", "event.cancelled"}
	if strings.Join(topics(rows), ",") != strings.Join(wantTopics, ",") {
		t.Fatalf("outbox topics %v, want %v", topics(rows), wantTopics)
	}
	for i, r := range rows {
		ev, d := r.Event, r.Data
		if r.Key != id || ev.Type != r.Topic || ev.Source != "sbor/event" || ev.Subject != id || ev.SpecVersion != "1.0" || ev.ID == "" {
			t.Errorf("row %d envelope: key %s %+v", i, r.Key, ev)
		}
		wantStatus := []string{"draft", "published", "cancelled"}[i]
		if d.EventID.String() != id || d.OrganizerID != owner.UserID || d.Title != "Renamed" || d.Venue != "Main hall" ||
			d.Status != wantStatus || d.Version != int64(i+2) || !d.EndsAt.After(d.StartsAt) {
			t.Errorf("row %d data: %+v", i, d)
		}
	}
	if got := s.must(http.StatusOK, "GET", "/internal/events/"+id, nil, nil); got.body["version"] != float64(4) {
		t.Errorf("version after three changes: %v", got.body["version"])
	}
}
