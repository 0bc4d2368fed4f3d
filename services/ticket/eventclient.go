package ticket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/tracing"
)

// EventInfo is what the ticket service needs to know of an event, from the event service's
// GET /internal/events/{id}.
type EventInfo struct {
	ID          uuid.UUID
	OrganizerID uuid.UUID
	Title       string
	StartsAt    time.Time
	EndsAt      time.Time
	Status      string
	Version     int64
}

// Event statuses as the event service names them.
const (
	EventDraft     = "draft"
	EventPublished = "published"
	EventCancelled = "cancelled"
)

// EventTimeout bounds one call to the event service: a purchase waits at most this long
// before it is answered 503 instead of hanging on a slow dependency.
const EventTimeout = 2 * time.Second

// EventClient calls the event service. It shares one pooled HTTP client between all
// requests, so a busy ticket service keeps warm connections instead of dialling per call.
type EventClient struct {
	baseURL string
	http    *http.Client
}

// NewEventClient returns a client of the event service at baseURL (for example
// http://event:8080). timeout <= 0 means EventTimeout.
func NewEventClient(baseURL string, timeout time.Duration) *EventClient {
	if timeout <= 0 {
		timeout = EventTimeout
	}
	return &EventClient{baseURL: strings.TrimRight(baseURL, "/"), http: newPeerClient(timeout, 256)}
}

// newPeerClient is the HTTP client of one peer service: pooled, keeping idle connections
// for reuse (the default of 2 per host would make every burst re-dial), never through a
// proxy (in-cluster traffic), bounded by timeout, and carrying the trace context.
func newPeerClient(timeout time.Duration, idle int) *http.Client {
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          idle,
		MaxIdleConnsPerHost:   idle,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{Transport: tracing.Transport(transport), Timeout: timeout}
}

// Close releases idle connections.
func (c *EventClient) Close() { c.http.CloseIdleConnections() }

type eventJSON struct {
	ID          uuid.UUID `json:"id"`
	OrganizerID uuid.UUID `json:"organizer_id"`
	Title       string    `json:"title"`
	StartsAt    time.Time `json:"starts_at"`
	EndsAt      time.Time `json:"ends_at"`
	Status      string    `json:"status"`
	Version     int64     `json:"version"`
}

// maxEventBody bounds an event's JSON (a description is at most a few KiB).
const maxEventBody = 1 << 20

var errEventNotFound = errs.New(errs.NotFound, "event_not_found", "no such event")

func errEventUnavailable(cause error) error {
	e := errs.New(errs.Unavailable, "event_service_unavailable", "the event service is unavailable; retry shortly")
	e.RetryAfter = 1
	e.Err = cause
	return e
}

// Event returns the event with id. An unknown event is NotFound; an unreachable, slow or
// failing event service is Unavailable (503 with Retry-After), never an internal error.
func (c *EventClient) Event(ctx context.Context, id uuid.UUID) (EventInfo, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.baseURL+"/internal/events/"+id.String(), nil)
	if err != nil {
		return EventInfo{}, errEventUnavailable(err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return EventInfo{}, ctx.Err()
		}
		return EventInfo{}, errEventUnavailable(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxEventBody))
	if err != nil {
		return EventInfo{}, errEventUnavailable(err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return EventInfo{}, errEventNotFound
	case resp.StatusCode != http.StatusOK:
		return EventInfo{}, errEventUnavailable(fmt.Errorf("GET %s: %s", req.URL.Path, resp.Status))
	}
	var ev eventJSON
	if err := json.Unmarshal(body, &ev); err != nil {
		return EventInfo{}, errEventUnavailable(fmt.Errorf("GET %s: unreadable event: %w", req.URL.Path, err))
	}
	if ev.ID != id || ev.OrganizerID == uuid.Nil || ev.Status == "" {
		return EventInfo{}, errEventUnavailable(fmt.Errorf("GET %s: incomplete event", req.URL.Path))
	}
	return EventInfo{
		ID: ev.ID, OrganizerID: ev.OrganizerID, Title: ev.Title,
		StartsAt: ev.StartsAt.UTC(), EndsAt: ev.EndsAt.UTC(), Status: ev.Status, Version: ev.Version,
	}, nil
}
