package notification

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
)

func TestWording(t *testing.T) {
	// 19:00 in Moscow is 16:00 UTC: the sentences always say UTC.
	startsAt := time.Date(2026, 12, 12, 22, 0, 0, 0, time.FixedZone("MSK", 3*3600))
	ev := cloudevent.EventData{Title: "Go Meetup", Venue: "Main Hall", StartsAt: startsAt}
	cases := []struct {
		name      string
		got, want [2]string
	}{
		{"purchase vip",
			pair(purchasedText(cloudevent.TicketData{EventTitle: "Go Meetup", TicketType: "vip"})),
			[2]string{"Ticket purchased", "Your VIP ticket for “Go Meetup” is confirmed."}},
		{"purchase early bird",
			pair(purchasedText(cloudevent.TicketData{EventTitle: "Go Meetup", TicketType: "early_bird"})),
			[2]string{"Ticket purchased", "Your early-bird ticket for “Go Meetup” is confirmed."}},
		{"purchase of an unknown type without a title",
			pair(purchasedText(cloudevent.TicketData{TicketType: "platinum"})),
			[2]string{"Ticket purchased", "Your ticket for your event is confirmed."}},
		{"cancelled",
			pair(cancelledText(ev)),
			[2]string{"Event cancelled", "“Go Meetup” on 12 Dec 2026 at 19:00 UTC has been cancelled. Your tickets are no longer valid."}},
		{"cancelled without title or time",
			pair(cancelledText(cloudevent.EventData{})),
			[2]string{"Event cancelled", "Your event has been cancelled. Your tickets are no longer valid."}},
		{"reminder",
			pair(reminderText(ev)),
			[2]string{"Reminder", "“Go Meetup” starts on 12 Dec 2026 at 19:00 UTC at Main Hall."}},
		{"reminder without venue",
			pair(reminderText(cloudevent.EventData{Title: "Go Meetup", StartsAt: startsAt, Venue: "  "})),
			[2]string{"Reminder", "“Go Meetup” starts on 12 Dec 2026 at 19:00 UTC."}},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, c.got, c.want)
		}
	}
}

func pair(title, body string) [2]string { return [2]string{title, body} }

func TestCursorRoundTrip(t *testing.T) {
	lc := listCursor{CreatedAt: time.Date(2026, 5, 1, 10, 11, 12, 123456000, time.UTC), ID: uuid.New()}
	got, err := decodeCursor(lc.encode())
	if err != nil || !got.CreatedAt.Equal(lc.CreatedAt) || got.ID != lc.ID {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, lc)
	}
	for _, bad := range []string{"x", "!!!!", lc.encode() + "AA", "AAAA"} {
		if _, err := decodeCursor(bad); err == nil {
			t.Errorf("decodeCursor(%q) accepted", bad)
		}
	}
}
