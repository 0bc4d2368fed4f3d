package event_test

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/services/event"
)

// pageThrough follows next_cursor from the first page to the last and returns every item's
// id in order, failing on a page larger than limit.
func (s *service) pageThrough(query url.Values, limit int, as *identity.Identity) []string {
	s.t.Helper()
	var ids []string
	query.Set("limit", strconv.Itoa(limit))
	for pages := 0; ; pages++ {
		if pages > 1000 {
			s.t.Fatal("paging does not end")
		}
		r := s.must(http.StatusOK, "GET", "/api/events?"+query.Encode(), nil, as)
		items := r.body["items"].([]any)
		if len(items) > limit {
			s.t.Fatalf("page of %d items, limit %d", len(items), limit)
		}
		for _, it := range items {
			ids = append(ids, it.(map[string]any)["id"].(string))
		}
		next := r.str("next_cursor")
		if next == "" {
			return ids
		}
		if len(items) != limit {
			s.t.Fatalf("a page of %d items before the last, limit %d", len(items), limit)
		}
		query.Set("cursor", next)
	}
}

// TestPaging: paging through the published events by start time gives each exactly once,
// in order, with no drafts or cancelled ones, while new events keep being inserted before
// and after the cursor; ties on the start time are broken by id.
func TestPaging(t *testing.T) {
	t.Parallel()
	s := startService(t, event.Config{})
	a, b := organizer(), organizer()
	var want []string
	var mine []string
	base := time.Now().Add(24 * time.Hour).Truncate(time.Second)
	for i := range 45 {
		as := a
		if i%3 == 0 {
			as = b
		}
		// Every fifth event shares a start time with the one before it.
		at := base.Add(time.Duration(i-i%5/4) * time.Hour)
		id := s.must(http.StatusCreated, "POST", "/api/events", map[string]any{
			"title": "E" + strconv.Itoa(i), "starts_at": at.Format(time.RFC3339), "ends_at": at.Add(time.Hour).Format(time.RFC3339),
		}, as).str("id")
		if as == a {
			mine = append(mine, id)
		}
		switch i % 9 {
		case 4: // stays a draft
		case 7:
			s.must(http.StatusOK, "POST", "/api/events/"+id+"/cancel", nil, as)
		default:
			s.must(http.StatusOK, "POST", "/api/events/"+id+"/publish", nil, as)
			want = append(want, id)
		}
	}
	// want must be in (starts_at, id) order: sort it as the database would.
	order := map[string]string{}
	for _, id := range want {
		order[id] = s.must(http.StatusOK, "GET", "/internal/events/"+id, nil, nil).str("starts_at") + id
	}
	slices.SortFunc(want, func(x, y string) int {
		if order[x] < order[y] {
			return -1
		}
		return 1
	})

	for _, limit := range []int{1, 7, 20, 100} {
		got := s.pageThrough(url.Values{}, limit, nil)
		if !slices.Equal(got, want) {
			t.Fatalf("limit %d: got %d ids, want %d in order\n got %v\nwant %v", limit, len(got), len(want), got, want)
		}
	}
	// The default page size is 20.
	first := s.must(http.StatusOK, "GET", "/api/events", nil, nil)
	if n := len(first.body["items"].([]any)); n != 20 || first.str("next_cursor") == "" {
		t.Fatalf("default page: %d items, next %q", n, first.str("next_cursor"))
	}

	// ?organizer=me lists the caller's own events of every status, and nobody else's.
	own := s.pageThrough(url.Values{"organizer": {"me"}}, 4, a)
	slices.Sort(own)
	slices.Sort(mine)
	if !slices.Equal(own, mine) {
		t.Fatalf("own events: got %d, want %d", len(own), len(mine))
	}
	if got := s.pageThrough(url.Values{"organizer": {"me"}}, 10, organizer()); len(got) != 0 {
		t.Fatalf("a new organizer sees %d events as their own", len(got))
	}

	// A cursor stays valid while the list changes: an event inserted before it is not
	// returned again, one after it is.
	r := s.must(http.StatusOK, "GET", "/api/events?limit=5", nil, nil)
	cursor := r.str("next_cursor")
	early := s.published(a, "Early", time.Hour)
	late := s.published(a, "Late", 30*24*time.Hour)
	rest := s.pageThrough(url.Values{"cursor": {cursor}}, 50, nil)
	if slices.Contains(rest, early) || !slices.Contains(rest, late) || len(rest) != len(want)-5+1 {
		t.Fatalf("after the cursor: %d ids, early %v, late %v", len(rest), slices.Contains(rest, early), slices.Contains(rest, late))
	}

	// Cursors are opaque and checked.
	for _, bad := range []string{"x", "MS4xLjI", "%00", "MS4xMjMubm90LWEtdXVpZA", "Mi4xMjMuMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAw"} {
		if r := s.do("GET", "/api/events?cursor="+bad, nil, nil); r.status != http.StatusBadRequest || r.str("code") != "invalid_cursor" {
			t.Errorf("cursor %q: %d %s", bad, r.status, r.raw)
		}
	}
}
