package cloudevent

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
)

// FuzzDecode: a Kafka message value, whatever its bytes, either fails with ErrInvalid (the
// consumers then skip it as permanent) or is a CloudEvent with the required attributes and
// data; its data then decodes into both payload types or fails with ErrInvalid, never
// panics.
func FuzzDecode(f *testing.F) {
	ticket, _ := New("sbor/ticket", TypeTicketPurchased, "t", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), TicketData{
		TicketID: uuid.New(), EventID: uuid.New(), TicketTypeID: uuid.New(), UserID: uuid.New(), EventTitle: "Go", TicketType: "vip",
	})
	event, _ := New("sbor/event", TypeEventCancelled, "e", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), EventData{
		EventID: uuid.New(), OrganizerID: uuid.New(), Title: "Go", Status: "cancelled", Version: 3,
	})
	for _, ev := range []Event{ticket, event} {
		b, _ := json.Marshal(ev)
		f.Add(b)
	}
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"specversion":"1.0"}`, `{"specversion":"0.3","id":"1","source":"s","type":"t","data":{}}`,
		`{"specversion":"1.0","id":"1","source":"s","type":"t","data":null}`,
		`{"specversion":"1.0","id":"1","source":"s","type":"t","data":"x"}`,
		`{"specversion":"1.0","id":"1","source":"s","type":"t","time":"yesterday","data":{}}`,
		`{"specversion":"1.0","id":"1","source":"s","type":"ticket.purchased","data":{"ticket_id":"nope"}}`,
		`{"specversion":"1.0","id":"1","source":"s","type":"event.cancelled","data":{"starts_at":1,"version":"2"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode(%q): %v is not ErrInvalid", b, err)
			}
			return
		}
		if ev.SpecVersion != SpecVersion || ev.ID == "" || ev.Source == "" || ev.Type == "" || len(ev.Data) == 0 || string(ev.Data) == "null" {
			t.Fatalf("Decode(%q) accepted an incomplete event %+v", b, ev)
		}
		var td TicketData
		if err := ev.DecodeData(&td); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("DecodeData(ticket) of %q: %v", b, err)
		}
		var ed EventData
		if err := ev.DecodeData(&ed); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("DecodeData(event) of %q: %v", b, err)
		}
		// What was accepted survives a round trip: a consumer re-publishing it (a dead
		// letter replayed, say) sends the same event.
		again, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("accepted %q but cannot encode it: %v", b, err)
		}
		back, err := Decode(again)
		if err != nil || back.ID != ev.ID || back.Type != ev.Type || !back.Time.Equal(ev.Time) {
			t.Fatalf("round trip of %q: %+v, %v", b, back, err)
		}
	})
}
