package security

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sbor-dev/sbor/services/gateway"
	"github.com/sbor-dev/sbor/test/platform"
)

// badCase is one hostile request.
type badCase struct {
	class string // what kind of bad input it is
	name  string
	path  string
	body  any      // nil, raw or JSON
	hdrs  []string // extra header pairs
	// ignored marks input that the route has no use for (a body or query on a route that
	// takes none): it must change nothing and never cause a 5xx, whatever the status.
	ignored bool
}

// bodyRoute describes a route that takes a JSON body: a valid body to spoil, and who may
// send it so that the body is what gets judged.
type bodyRoute struct {
	valid map[string]any
	by    *caller
	// optional fields may be absent, so null (which JSON decoding treats as absent) is fine.
	optional []string
}

// testBadInput sends malformed JSON, wrong types, unknown fields, huge bodies and strings,
// invalid UUIDs, invalid times and pagination abuse to every public route, as a caller
// allowed to use it. Every answer must be a 4xx problem+json, and afterwards the APIs'
// lists and counts must show that nothing was written.
func testBadInput(t *testing.T, p *platform.Platform) {
	org := organizer(t, p, "Bella")
	buyer := signUp(t, p, "Mallory")
	victim := signUp(t, p, "Vera")
	eventID, typeID := published(t, org)
	draftID := draft(t, org)
	_, code := buy(t, buyer, eventID, typeID)
	ticketID := items(buyer.must(t, 200, "GET", "/api/tickets", nil))[0]["id"].(string)
	var notificationID string
	platform.Eventually(t, 20*time.Second, "the purchase notification", func() bool {
		ns := items(buyer.must(t, 200, "GET", "/api/notifications", nil))
		if len(ns) > 0 {
			notificationID = ns[0]["id"].(string)
		}
		return notificationID != ""
	})
	// Tokens that must still work afterwards: bad input must not spend or revoke them.
	spare := anonymous(p).must(t, 200, "POST", "/api/auth/login", map[string]string{"email": victim.email, "password": password})
	spareRefresh := spare.JSON["refresh_token"].(string)
	spare2 := anonymous(p).must(t, 200, "POST", "/api/auth/login", map[string]string{"email": victim.email, "password": password})
	spareRefresh2 := spare2.JSON["refresh_token"].(string)
	newEmail := "never-" + platform.RandomHex(4) + "@example.com"

	before := snapshot(t, org, buyer, eventID, draftID)

	future := rfc3339(eventStart)
	bodies := map[string]bodyRoute{
		"POST /api/auth/register":            {map[string]any{"email": newEmail, "name": "Mallory", "password": password}, anonymous(p), nil},
		"POST /api/auth/login":               {map[string]any{"email": victim.email, "password": "not-the-password-1"}, anonymous(p), nil},
		"POST /api/auth/refresh":             {map[string]any{"refresh_token": spareRefresh}, anonymous(p), nil},
		"POST /api/auth/logout":              {map[string]any{"refresh_token": spareRefresh2}, anonymous(p), nil},
		"POST /api/events":                   {map[string]any{"title": "T", "description": "D", "venue": "V", "starts_at": future, "ends_at": rfc3339(eventStart.Add(time.Hour))}, org, []string{"description", "venue"}},
		"PUT /api/events/{id}":               {map[string]any{"title": "T", "description": "D", "venue": "V", "starts_at": future, "ends_at": rfc3339(eventStart.Add(time.Hour))}, org, []string{"description", "venue"}},
		"POST /api/events/{id}/ticket-types": {map[string]any{"type": "vip", "price_cents": 100, "currency": "EUR", "quantity": 5, "sales_start": rfc3339(time.Now()), "sales_end": rfc3339(eventStart.Add(-time.Hour))}, org, nil},
		"POST /api/events/{id}/tickets":      {map[string]any{"ticket_type_id": typeID}, buyer, nil},
		"POST /api/events/{id}/staff":        {map[string]any{"email": victim.email}, org, nil},
	}
	// The id a route's {id} stands for in the valid request.
	ids := map[string]string{
		"PUT /api/events/{id}": draftID, "POST /api/events/{id}/publish": draftID,
		"POST /api/tickets/{id}/validate": code, "POST /api/tickets/{id}/checkin": code,
		"GET /api/tickets/{id}/qr": ticketID, "POST /api/notifications/{id}/read": notificationID,
	}
	callers := map[string]*caller{
		"GET /api/tickets/{id}/qr": buyer, "GET /api/tickets": buyer, "GET /api/notifications": buyer,
		"GET /api/notifications/unread-count": buyer, "POST /api/notifications/{id}/read": buyer,
		"GET /api/users/me": buyer, "POST /api/users/me/become-organizer": org,
	}
	paged := map[string]bool{
		"GET /api/events": true, "GET /api/events/{id}/tickets": true, "GET /api/tickets": true, "GET /api/notifications": true,
	}

	counts := map[string]int{}
	total := 0
	for _, rt := range gateway.Routes {
		route := rt.Method + " " + rt.Pattern
		id := ids[route]
		if id == "" {
			id = eventID
		}
		// {user_id} (DELETE .../staff/{user_id}) names a user who is not staff: a valid request.
		path := strings.ReplaceAll(strings.ReplaceAll(rt.Pattern, "{id}", id), "{user_id}", buyer.userID)
		by := callers[route]
		if by == nil {
			by = org
		}
		var cases []badCase
		br, hasBody := bodies[route]
		if hasBody {
			by = br.by
			cases = append(cases, bodyCases(path, br.valid, br.optional)...)
		}
		if strings.Contains(rt.Pattern, "{id}") {
			for name, bad := range invalidIDs {
				var body any
				if hasBody {
					body = br.valid
				}
				badPath := strings.ReplaceAll(strings.ReplaceAll(rt.Pattern, "{id}", bad), "{user_id}", buyer.userID)
				cases = append(cases, badCase{class: "invalid id", name: name, path: badPath, body: body})
			}
		}
		if paged[route] {
			for name, q := range pagingAbuse {
				cases = append(cases, badCase{class: "pagination abuse", name: name, path: path + "?" + q})
			}
			if route == "GET /api/events" {
				cases = append(cases, badCase{class: "pagination abuse", name: "organizer=someone", path: path + "?organizer=" + buyer.userID})
			}
		}
		if !hasBody && rt.Method != "GET" {
			// A body the route does not take is ignored: never a 5xx, never a write
			// beyond what the route does anyway (so only where that is nothing).
			if !strings.Contains(rt.Pattern, "{id}") {
				cases = append(cases, badCase{class: "ignored body", name: "malformed JSON body", path: path, body: raw(`{"role":"admin",`), ignored: true})
			}
		}
		if rt.Method == "GET" && !paged[route] {
			cases = append(cases, badCase{class: "ignored query", name: "limit=-1&cursor=%00", path: path + "?limit=-1&cursor=%00", ignored: true})
		}
		if len(cases) == 0 {
			t.Errorf("%s: no bad-input case applies", route)
		}
		for _, c := range cases {
			r := by.send(rt.Method, c.path, c.body, c.hdrs...)
			what := fmt.Sprintf("%s [%s: %s]", route, c.class, c.name)
			counts[c.class]++
			total++
			switch {
			case r.Err != nil:
				t.Errorf("%s: %v", what, r.Err)
			case r.Status >= 500:
				t.Errorf("%s: server error %d: %.300s", what, r.Status, r.Body)
			case c.ignored:
				checkProblem(t, what, r)
			case r.Status < 400:
				t.Errorf("%s: %d, want a 4xx: %.300s", what, r.Status, r.Body)
			default:
				checkProblem(t, what, r)
			}
		}
	}
	t.Logf("bad input: %d requests to %d routes, by class %v", total, len(gateway.Routes), counts)

	// Nothing was written.
	after := snapshot(t, org, buyer, eventID, draftID)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("bad input changed %s: %v → %v", k, v, after[k])
		}
	}
	anonymous(p).must(t, 200, "POST", "/api/auth/login", map[string]string{"email": victim.email, "password": password}) // not locked out
	anonymous(p).must(t, 200, "POST", "/api/auth/refresh", map[string]any{"refresh_token": spareRefresh})                // not spent
	anonymous(p).must(t, 200, "POST", "/api/auth/refresh", map[string]any{"refresh_token": spareRefresh2})               // not revoked
	anonymous(p).must(t, 201, "POST", "/api/auth/register", map[string]any{"email": newEmail, "name": "New", "password": password})
}

// snapshot reads what bad input must not change, through the APIs.
func snapshot(t *testing.T, org, buyer *caller, eventID, draftID string) map[string]any {
	t.Helper()
	s := map[string]any{
		"organizer's events":    org.countAll(t, "/api/events?organizer=me"),
		"attendees":             org.countAll(t, "/api/events/"+eventID+"/tickets"),
		"buyer's tickets":       buyer.countAll(t, "/api/tickets"),
		"buyer's notifications": buyer.countAll(t, "/api/notifications"),
		"buyer's unread":        buyer.must(t, 200, "GET", "/api/notifications/unread-count", nil).JSON["unread"],
		"buyer's profile":       string(buyer.must(t, 200, "GET", "/api/users/me", nil).Body),
		"draft":                 string(org.must(t, 200, "GET", "/api/events/"+draftID, nil).Body),
		"event":                 string(org.must(t, 200, "GET", "/api/events/"+eventID, nil).Body),
	}
	tts := items(org.must(t, 200, "GET", "/api/events/"+eventID+"/ticket-types", nil))
	s["ticket types"] = len(tts)
	for _, tt := range tts {
		s["sold of "+tt["type"].(string)] = tt["sold"]
	}
	return s
}

// invalidIDs are path ids that name nothing: not UUIDs or codes, oversized, encoded
// traversal and injection attempts.
var invalidIDs = map[string]string{
	"not a uuid":        "not-a-uuid",
	"uuid with a g":     "0000000g-0000-0000-0000-000000000000",
	"5000 characters":   strings.Repeat("a", 5000),
	"NUL":               "%00",
	"encoded traversal": "%2e%2e%2f%2e%2e%2finternal%2fjwks",
	"SQL":               "1%27%20OR%20%271%27%3D%271",
	"emoji":             "%F0%9F%98%80",
}

// pagingAbuse are limit and cursor values no list accepts.
var pagingAbuse = map[string]string{
	"limit=0":            "limit=0",
	"limit=-1":           "limit=-1",
	"limit=101":          "limit=101",
	"limit=1000000":      "limit=1000000",
	"limit=2^70":         "limit=1180591620717411303424",
	"limit=abc":          "limit=abc",
	"limit=1.5":          "limit=1.5",
	"limit=NUL":          "limit=%00",
	"cursor=garbage":     "cursor=garbage!",
	"cursor=AAAA":        "cursor=AAAA",
	"cursor=10k":         "cursor=" + strings.Repeat("A", 10000),
	"cursor=NUL":         "cursor=%00",
	"cursor=forged json": "cursor=" + base64.RawURLEncoding.EncodeToString([]byte(`{"after":"' OR 1=1"}`)),
}

// bodyCases spoils a valid body in every way the issue names.
func bodyCases(path string, valid map[string]any, optional []string) []badCase {
	var out []badCase
	add := func(class, name string, body any, hdrs ...string) {
		out = append(out, badCase{class: class, name: name, path: path, body: body, hdrs: hdrs})
	}
	with := func(field string, v any) map[string]any {
		m := map[string]any{}
		for k, x := range valid {
			m[k] = x
		}
		m[field] = v
		return m
	}
	validJSON, _ := json.Marshal(valid)

	for name, b := range map[string]string{
		"empty": "", "spaces": "   ", "open brace": "{", "unterminated string": `{"a":"`, "array": "[]",
		"null": "null", "string": `"x"`, "number": "42", "two objects": "{}{}",
		"trailing garbage": string(validJSON) + "x", "BOM": "\xef\xbb\xbf" + string(validJSON),
		"invalid UTF-8": strings.Replace(string(validJSON), `"}`, "\xff\xfe\"}", 1),
		"single quotes": strings.ReplaceAll(string(validJSON), `"`, `'`), "NaN": `{"x":NaN}`,
		"deep nesting": strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
		"comment":      "/* hi */" + string(validJSON),
	} {
		add("malformed JSON", name, raw(b))
	}
	add("malformed JSON", "form content type", raw("a=b"), "Content-Type", "application/x-www-form-urlencoded")
	add("malformed JSON", "text/plain", raw(validJSON), "Content-Type", "text/plain")
	for field, v := range valid {
		wrong := map[string]any{"number": 12345, "bool": true, "object": map[string]any{}, "array": []any{1}, "null": nil, "huge number": json.Number("1e400")}
		if _, isString := v.(string); !isString {
			delete(wrong, "number")
			wrong["string"] = "12345"
		}
		if slices.Contains(optional, field) {
			delete(wrong, "null")
		}
		for name, v := range wrong {
			add("wrong type", field+" as "+name, with(field, v))
		}
		add("huge string", field+" of 60000 characters", with(field, strings.Repeat("x", 60000)))
		add("huge string", field+" of 15000 emoji", with(field, strings.Repeat("😀", 15000)))
		add("huge string", field+" with NUL", with(field, "a\x00b"))
	}
	for _, field := range []string{"role", "id", "user_id", "organizer_id", "status", "sold", "admin", "Role"} {
		if _, known := valid[strings.ToLower(field)]; !known {
			add("unknown field", field, with(field, "organizer"))
		}
	}
	add("unknown field", "nested __proto__", with("__proto__", map[string]any{"admin": true}))
	add("huge body", "100 KiB (over the service's 64 KiB)", with("pad", strings.Repeat("x", 100<<10)))
	add("huge body", "2 MiB (over the gateway's 1 MiB)", raw(`{"pad":"`+strings.Repeat("x", 2<<20)+`"}`))
	for _, field := range []string{"ticket_type_id"} {
		if _, ok := valid[field]; ok {
			for name, v := range map[string]any{"not a uuid": "nope", "empty": "", "short": "1234", "g": "0000000g-0000-0000-0000-000000000000", "braces": "{" + strings.Repeat("0", 32) + "}x", "nil uuid": "00000000-0000-0000-0000-000000000000"} {
				add("invalid UUID", field+" "+name, with(field, v))
			}
		}
	}
	for _, field := range []string{"starts_at", "ends_at", "sales_start", "sales_end"} {
		if _, ok := valid[field]; !ok {
			continue
		}
		for name, v := range map[string]any{
			"word": "tomorrow", "Feb 30": "2027-02-30T10:00:00Z", "date only": "2027-01-01", "no zone": "2027-01-01T10:00:00",
			"unix number": 1798761600, "empty": "", "year 0": "0000-01-01T00:00:00Z", "year 9999": "9999-12-31T23:59:59Z",
			"year 10000": "+10000-01-01T00:00:00Z", "hour 25": "2027-01-01T25:00:00Z", "past": "2001-01-01T00:00:00Z",
		} {
			add("invalid time", field+" "+name, with(field, v))
		}
	}
	for _, field := range []string{"price_cents", "quantity"} {
		if _, ok := valid[field]; !ok {
			continue
		}
		for name, v := range map[string]any{"negative": -1, "zero": 0, "2^31": 2147483648, "2^63": json.Number("9223372036854775808"), "fraction": 1.5, "string": "10"} {
			if field == "price_cents" && (name == "zero" || name == "2^31") {
				continue // a free ticket is valid, and so is a dear one
			}
			add("invalid number", field+" "+name, with(field, v))
		}
	}
	if strings.HasSuffix(path, "/tickets") {
		add("invalid header", "Idempotency-Key of 10000 characters", valid, "Idempotency-Key", strings.Repeat("k", 10000))
	}
	return out
}
