package event

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/web"
)

func mustBeClientError(t *testing.T, what string, err error) {
	t.Helper()
	e, ok := errs.As(err)
	if !ok || web.StatusOf(e.Kind) < 400 || web.StatusOf(e.Kind) > 499 {
		t.Fatalf("%s: %v is not a client error", what, err)
	}
}

// FuzzEventRequest decodes any body as a create/update request and validates it, as the
// handlers do: nothing panics, every refusal is a 4xx, and an accepted event is storable
// text within the limits, in the future, ends after it starts, and encodes as JSON (a time
// JSON cannot carry would break the answer after the write).
func FuzzEventRequest(f *testing.F) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{
		`{"title":"Go","description":"d","venue":"v","starts_at":"2026-07-01T19:00:00Z","ends_at":"2026-07-01T22:00:00Z"}`,
		`{"title":"Go","starts_at":"2026-07-01T19:00:00+14:00","ends_at":"2026-07-01T22:00:00-12:00"}`,
		`{"title":"Go","starts_at":"9999-12-31T23:59:59Z","ends_at":"9999-12-31T23:59:59-01:00"}`,
		`{"title":"Go","starts_at":"0000-01-01T00:00:00+01:00","ends_at":"0000-01-01T01:00:00Z"}`,
		`{"title":"\u0000","starts_at":"2026-07-01T19:00:00Z","ends_at":"2026-07-01T22:00:00Z"}`,
		`{"title":"` + strings.Repeat("t", 201) + `"}`, `{"title":"Go","starts_at":"tomorrow"}`, `{"status":"published"}`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req eventRequest
		if err := web.DecodeBytes(body, &req); err != nil {
			mustBeClientError(t, "decode", err)
			return
		}
		ne, err := req.toNewEvent().Validate(now)
		if err != nil {
			mustBeClientError(t, "validate", err)
			return
		}
		for _, s := range []string{ne.Title, ne.Description, ne.Venue} {
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				t.Fatalf("accepted text PostgreSQL cannot store: %q", s)
			}
		}
		if ne.Title == "" || utf8.RuneCountInString(ne.Title) > MaxTitleLen || utf8.RuneCountInString(ne.Description) > MaxDescriptionLen || utf8.RuneCountInString(ne.Venue) > MaxVenueLen {
			t.Fatalf("accepted fields over their limits: %+v", ne)
		}
		if !ne.StartsAt.After(now) || !ne.EndsAt.After(ne.StartsAt) || ne.EndsAt.After(now.Add(MaxScheduleAhead)) {
			t.Fatalf("accepted times %s – %s", ne.StartsAt, ne.EndsAt)
		}
		ev := Event{ID: uuid.New(), OrganizerID: uuid.New(), Title: ne.Title, Description: ne.Description, Venue: ne.Venue,
			StartsAt: ne.StartsAt, EndsAt: ne.EndsAt, Status: StatusDraft}
		if _, err := json.Marshal(toEventJSON(ev)); err != nil {
			t.Fatalf("accepted an event its answer cannot encode: %v", err)
		}
	})
}

// FuzzPageRequest: any limit and cursor give a page size from 1 to MaxPageSize or a 4xx.
func FuzzPageRequest(f *testing.F) {
	f.Add("", "")
	f.Add("20", Cursor{StartsAt: time.Now(), ID: uuid.New()}.Encode())
	f.Add("0", "garbage")
	f.Add("-1", "MS4xLjI")
	f.Add("99999999999999999999", "%00")
	f.Fuzz(func(t *testing.T, limit, cursor string) {
		pr, err := ParsePageRequest(limit, cursor)
		if err != nil {
			mustBeClientError(t, "page request", err)
			return
		}
		if pr.Limit < 1 || pr.Limit > MaxPageSize {
			t.Fatalf("limit %q gave %d", limit, pr.Limit)
		}
	})
}
