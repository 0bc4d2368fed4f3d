package notification_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/identity"
	"github.com/sbor-dev/sbor/internal/testkit/pgtest"
	"github.com/sbor-dev/sbor/services/notification"
)

func transferEvent(t *testing.T, from, to uuid.UUID) (cloudevent.Event, cloudevent.TicketTransferData) {
	d := cloudevent.TicketTransferData{
		TicketData: cloudevent.TicketData{TicketID: uuid.New(), EventID: uuid.New(), TicketTypeID: uuid.New(), UserID: from,
			EventTitle: "Go Meetup", TicketType: "vip", PurchasedAt: time.Now().UTC()},
		NewTicketID: uuid.New(), FromUserID: from, ToUserID: to, TransferredAt: time.Now().UTC(),
	}
	return mustEvent(t, cloudevent.TypeTicketTransferred, d.TicketID.String(), d), d
}

// TestTicketTransferredNotifiesBoth: ticket.transferred (through real Kafka) notifies the
// former holder about the old ticket and the recipient about the new one; the message
// delivered twice, then consumed again by a second group on the same database, still leaves
// one notification each. Unusable transfer messages are parked, not retried for ever.
func TestTicketTransferredNotifiesBoth(t *testing.T) {
	t.Parallel()
	b := newBus(t, 1)
	dbURL := pgtest.NewDatabase(t)
	svc := startService(t, b.config(dbURL, "g1-"+b.prefix))
	pool := openPool(t, dbURL)

	from := identity.Identity{UserID: uuid.New(), Role: identity.RoleUser}
	to := identity.Identity{UserID: uuid.New(), Role: identity.RoleUser}
	ev, d := transferEvent(t, from.UserID, to.UserID)
	sameUser, _ := transferEvent(t, from.UserID, from.UserID)
	noNewTicket := mustEvent(t, cloudevent.TypeTicketTransferred, "x", cloudevent.TicketTransferData{
		TicketData: cloudevent.TicketData{TicketID: uuid.New(), EventID: uuid.New()}, FromUserID: from.UserID, ToUserID: to.UserID})
	badData := ev
	badData.ID = uuid.NewString()
	badData.Data = json.RawMessage(`{"new_ticket_id": 7}`)
	b.publish(cloudevent.TypeTicketTransferred, d.EventID.String(),
		encode(t, sameUser), encode(t, noNewTicket), encode(t, badData), encode(t, ev), encode(t, ev))
	b.waitCaughtUp("g1-" + b.prefix)

	a := &api{t: t, url: svc.url}
	out := items(a.expect("GET", "/api/notifications", &from, http.StatusOK))
	if len(out) != 1 || out[0]["type"] != "ticket_transferred_out" || out[0]["ticket_id"] != d.TicketID.String() ||
		out[0]["event_id"] != d.EventID.String() || out[0]["title"] != "Ticket transferred" ||
		out[0]["body"] != "Your VIP ticket for “Go Meetup” has been transferred to another attendee; its old code no longer works." {
		t.Fatalf("former holder's notifications = %v", out)
	}
	in := items(a.expect("GET", "/api/notifications", &to, http.StatusOK))
	if len(in) != 1 || in[0]["type"] != "ticket_transferred_in" || in[0]["ticket_id"] != d.NewTicketID.String() ||
		in[0]["event_id"] != d.EventID.String() || in[0]["title"] != "Ticket received" {
		t.Fatalf("recipient's notifications = %v", in)
	}
	if n := count(t, pool, `SELECT count(*) FROM dead_letters`); n != 3 {
		t.Fatalf("%d dead letters, want the 3 unusable transfers", n)
	}

	// A second group reads the topic from the start: every message is delivered again.
	startService(t, b.config(dbURL, "g2-"+b.prefix))
	b.waitCaughtUp("g2-" + b.prefix)
	if n := count(t, pool, `SELECT count(*) FROM notifications`); n != 2 {
		t.Fatalf("%d notifications after redelivery, want 2", n)
	}
}

// oneHolderPage is a ticket service's holder list of one page: the listing itself is tested
// against the real ticket service in holders_test.go; this only feeds statuses to the rule.
type oneHolderPage []notification.Holder

func (h oneHolderPage) Holders(context.Context, uuid.UUID, string, string, int) (notification.HolderPage, error) {
	return notification.HolderPage{Items: h}, nil
}

// TestCancellationSkipsTransferredTickets: a user who gave their ticket away is not told
// that the event they no longer hold a ticket for is cancelled; its new holder is, and so is
// a user who gave one ticket away but holds another.
func TestCancellationSkipsTransferredTickets(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	if err := db.Migrate(context.Background(), pool, notification.Migrations()...); err != nil {
		t.Fatal(err)
	}
	gaveAway, recipient, both := uuid.New(), uuid.New(), uuid.New()
	core := notification.NewCore(notification.NewStore(pool), oneHolderPage{
		{TicketID: uuid.New(), UserID: gaveAway, Status: "transferred"},
		{TicketID: uuid.New(), UserID: recipient, Status: "cancelled"},
		{TicketID: uuid.New(), UserID: both, Status: "transferred"},
		{TicketID: uuid.New(), UserID: both, Status: "cancelled"},
	}, slog.New(slog.DiscardHandler))
	eventID := uuid.New()
	if err := core.EventCancelled(context.Background(), notification.Source{ID: uuid.NewString(), Time: time.Now()},
		cloudevent.EventData{EventID: eventID, Title: "Gone", Status: "cancelled"}); err != nil {
		t.Fatal(err)
	}
	for user, want := range map[uuid.UUID]int{gaveAway: 0, recipient: 1, both: 1} {
		if n := count(t, pool, `SELECT count(*) FROM notifications WHERE user_id = $1 AND type = 'event.cancelled'`, user); n != want {
			t.Errorf("user has %d cancellation notifications, want %d", n, want)
		}
	}
}
