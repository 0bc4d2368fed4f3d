package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/tracing"
)

// DefaultRemindAttempts is how often `sbor remind` tries when not told otherwise.
const DefaultRemindAttempts = 5

// Final failures of Remind: retrying cannot help, so the Job should not either (the command
// still exits non-zero, and the failure is in the Job's log).
var (
	// ErrEventNotFound: the event service does not know the event (404).
	ErrEventNotFound = errors.New("event not found")
	// ErrNotRemindable: the event is in a state that has no reminder, e.g. cancelled or not
	// published (409).
	ErrNotRemindable = errors.New("event cannot be reminded")
)

// RemindResult is the event service's answer to a remind call.
type RemindResult struct {
	// Sent is true when this call published event.reminder, false when it had been published
	// before (the route sends at most once per event).
	Sent           bool       `json:"sent"`
	ReminderSentAt *time.Time `json:"reminder_sent_at"`
}

// Remind is `sbor remind --event ID`: it asks the event service to send the event's reminder
// (POST {eventServiceURL}/internal/events/{id}/remind), retrying connection failures, 5xx and
// 429 answers with exponential backoff up to attempts times. 404 and 409 are final. Any
// failure returns an error, so the command exits non-zero and the Job's own backoff retries.
func Remind(ctx context.Context, eventServiceURL, eventID string, attempts int) error {
	r := reminder{client: &http.Client{Timeout: 15 * time.Second, Transport: tracing.Transport(nil)}, log: slog.Default(), backoff: time.Second, maxBackoff: 30 * time.Second}
	_, err := r.remind(ctx, eventServiceURL, eventID, attempts)
	return err
}

// reminder holds what tests shorten: the backoff.
type reminder struct {
	client              *http.Client
	log                 *slog.Logger
	backoff, maxBackoff time.Duration
}

func (r reminder) remind(ctx context.Context, eventServiceURL, eventID string, attempts int) (RemindResult, error) {
	id, err := uuid.Parse(eventID)
	if err != nil {
		return RemindResult{}, fmt.Errorf("remind: event id %q is not a UUID", eventID)
	}
	base, err := url.Parse(eventServiceURL)
	if err != nil || base.Scheme == "" || base.Host == "" {
		return RemindResult{}, fmt.Errorf("remind: event service URL %q is not an absolute URL (SBOR_EVENT_URL)", eventServiceURL)
	}
	target := base.JoinPath("internal", "events", id.String(), "remind").String()
	if attempts < 1 {
		attempts = DefaultRemindAttempts
	}
	log := r.log.With("event_id", id, "url", target)
	wait := r.backoff
	var last error
	for attempt := 1; attempt <= attempts; attempt++ {
		res, retryAfter, err := r.call(ctx, target)
		if err == nil {
			if res.Sent {
				log.Info("reminder sent", "attempt", attempt)
			} else {
				log.Info("reminder had already been sent", "reminder_sent_at", res.ReminderSentAt)
			}
			return res, nil
		}
		var final finalError
		if errors.As(err, &final) {
			log.Error("reminder refused", "err", err)
			return RemindResult{}, err
		}
		last = err
		if attempt == attempts || ctx.Err() != nil {
			break
		}
		delay := max(wait, retryAfter)
		log.Warn("reminder failed; retrying", "attempt", attempt, "of", attempts, "in", delay, "err", err)
		select {
		case <-ctx.Done():
			return RemindResult{}, fmt.Errorf("remind %s: %w (last failure: %v)", id, ctx.Err(), last)
		case <-time.After(delay):
		}
		wait = min(wait*2, r.maxBackoff)
	}
	if ctx.Err() != nil {
		return RemindResult{}, fmt.Errorf("remind %s: %w (last failure: %v)", id, ctx.Err(), last)
	}
	return RemindResult{}, fmt.Errorf("remind %s: giving up after %d attempts: %w", id, attempts, last)
}

// finalError is an answer that retrying cannot change.
type finalError struct{ err error }

func (e finalError) Error() string { return e.err.Error() }
func (e finalError) Unwrap() error { return e.err }

// call makes one request; a finalError means do not retry, retryAfter is the server's hint.
func (r reminder) call(ctx context.Context, target string) (res RemindResult, retryAfter time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
	if err != nil {
		return res, 0, finalError{err}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Request-ID", uuid.NewString())
	resp, err := r.client.Do(req)
	if err != nil {
		return res, 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))

	switch {
	case resp.StatusCode == http.StatusOK:
		if err := json.Unmarshal(body, &res); err != nil {
			return res, 0, fmt.Errorf("event service answered 200 with an unreadable body: %w", err)
		}
		return res, 0, nil
	case resp.StatusCode == http.StatusNotFound:
		return res, 0, finalError{fmt.Errorf("%w: the event service has no event %s (404)%s", ErrEventNotFound, lastPathID(target), problemDetail(body))}
	case resp.StatusCode == http.StatusConflict:
		return res, 0, finalError{fmt.Errorf("%w: the event service refused (409)%s", ErrNotRemindable, problemDetail(body))}
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
		return res, parseRetryAfter(resp.Header.Get("Retry-After")), fmt.Errorf("event service answered %d%s", resp.StatusCode, problemDetail(body))
	default:
		return res, 0, finalError{fmt.Errorf("event service answered %d%s", resp.StatusCode, problemDetail(body))}
	}
}

// problemDetail extracts the detail (or title) of an RFC 9457 problem, for the message.
func problemDetail(body []byte) string {
	var p struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &p) != nil {
		return ""
	}
	switch {
	case p.Detail != "":
		return ": " + p.Detail
	case p.Title != "":
		return ": " + p.Title
	}
	return ""
}

func parseRetryAfter(v string) time.Duration {
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs > 0 {
		return min(time.Duration(secs)*time.Second, time.Minute)
	}
	return 0
}

func lastPathID(target string) string {
	parts := strings.Split(strings.TrimSuffix(target, "/remind"), "/")
	return parts[len(parts)-1]
}
