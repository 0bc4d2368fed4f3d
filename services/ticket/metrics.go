package ticket

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/sbor-dev/sbor/internal/platform/errs"
)

// Business counters of the ticket service, exported on SBOR_METRICS_ADDR with the platform's
// other metrics. They count answers of this replica: the whole service is their sum over
// replicas.
//
// Purchases and check-ins are counted once per call of Core.Purchase and Core.CheckIn, by
// what the caller was told; a sold-out is counted twice over, on purpose: every buyer turned
// away (sbor_ticket_purchases_total{result="sold_out"}, exact across replicas) and every
// ticket type that sold out (sbor_ticket_types_sold_out_total, the first time this replica
// saw the last ticket of the type go).
var (
	purchasesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "sbor_ticket_purchases_total",
		Help: "Purchase requests answered, by result: sold, replayed (an Idempotency-Key retry answered with its ticket), " +
			"sold_out, refused (sales window shut, event not published or cancelled), invalid (the request's fault), " +
			"abandoned (the caller went away) and error (ours: database or event service unavailable).",
	}, []string{"result"})
	typesSoldOutTotal = promauto.NewCounter(prometheus.CounterOpts{
		Name: "sbor_ticket_types_sold_out_total",
		Help: "Ticket types this replica saw sell out: its purchase that took the last ticket, or its first purchase refused for want of one.",
	})
	checkInsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "sbor_ticket_checkins_total",
		Help: "Check-ins answered, by result: checked_in, already_used, cancelled, invalid (unknown or malformed code), " +
			"forbidden (another organizer's ticket) and error.",
	}, []string{"result"})
)

// Results of a purchase, the values of sbor_ticket_purchases_total's result label.
const (
	PurchaseSold      = "sold"
	PurchaseReplayed  = "replayed"
	PurchaseSoldOut   = "sold_out"
	PurchaseRefused   = "refused"
	PurchaseInvalid   = "invalid"
	PurchaseAbandoned = "abandoned"
	PurchaseError     = "error"
)

// Results of a check-in, the values of sbor_ticket_checkins_total's result label.
const (
	CheckInDone        = "checked_in"
	CheckInAlreadyUsed = "already_used"
	CheckInCancelled   = "cancelled"
	CheckInInvalid     = "invalid"
	CheckInForbidden   = "forbidden"
	CheckInError       = "error"
)

func init() {
	// Every result starts at 0, so a rate over a result that has not happened yet is 0, not
	// absent, and an alert on it can see it start.
	for _, r := range []string{PurchaseSold, PurchaseReplayed, PurchaseSoldOut, PurchaseRefused, PurchaseInvalid, PurchaseAbandoned, PurchaseError} {
		purchasesTotal.WithLabelValues(r)
	}
	for _, r := range []string{CheckInDone, CheckInAlreadyUsed, CheckInCancelled, CheckInInvalid, CheckInForbidden, CheckInError} {
		checkInsTotal.WithLabelValues(r)
	}
}

// countPurchase records what a purchase answered.
func countPurchase(res PurchaseResult, err error) {
	purchasesTotal.WithLabelValues(purchaseResult(res, err)).Inc()
}

func purchaseResult(res PurchaseResult, err error) string {
	switch {
	case err == nil && res.Replayed:
		return PurchaseReplayed
	case err == nil:
		return PurchaseSold
	case errors.Is(err, errSoldOut):
		return PurchaseSoldOut
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return PurchaseAbandoned
	}
	switch e, _ := errs.As(err); {
	case e == nil:
		return PurchaseError
	case e.Kind == errs.Conflict:
		return PurchaseRefused
	case e.Kind == errs.Internal, e.Kind == errs.Unavailable:
		return PurchaseError
	default:
		return PurchaseInvalid
	}
}

// countCheckIn records what a check-in answered.
func countCheckIn(err error) {
	checkInsTotal.WithLabelValues(checkInResult(err)).Inc()
}

func checkInResult(err error) string {
	switch {
	case err == nil:
		return CheckInDone
	case errors.Is(err, errAlreadyUsed):
		return CheckInAlreadyUsed
	case errors.Is(err, errTicketCancelled):
		return CheckInCancelled
	}
	switch e, _ := errs.As(err); {
	case e == nil, e.Kind == errs.Internal, e.Kind == errs.Unavailable:
		return CheckInError
	case e.Kind == errs.Forbidden:
		return CheckInForbidden
	default:
		return CheckInInvalid
	}
}

// markSoldOut remembers that a type is sold out and counts the type the first time this
// replica sees it so (a type loaded already sold out was counted, if at all, before).
func markSoldOut(ct *cachedType) {
	if ct.soldOut.CompareAndSwap(false, true) {
		typesSoldOutTotal.Inc()
	}
}
