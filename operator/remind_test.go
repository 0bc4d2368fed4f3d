package operator

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The event service's internal remind route is played by an httptest server: this is a test of
// the client's retry policy, not of the event service (whose own tests cover the route).

func testReminder() reminder {
	return reminder{client: &http.Client{Timeout: 2 * time.Second}, log: slog.New(slog.DiscardHandler),
		backoff: time.Millisecond, maxBackoff: 5 * time.Millisecond}
}

// remindServer answers the n-th call with answers[n] (the last one repeats).
func remindServer(t *testing.T, id string, answers ...func(w http.ResponseWriter)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(calls.Add(1)) - 1
		if r.Method != http.MethodPost || r.URL.Path != "/internal/events/"+id+"/remind" || r.Header.Get("X-Request-ID") == "" {
			t.Errorf("request %s %s (X-Request-ID %q)", r.Method, r.URL.Path, r.Header.Get("X-Request-ID"))
		}
		answers[min(n, len(answers)-1)](w)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func answer(status int, body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

func TestRemindSends(t *testing.T) {
	id := uuid.NewString()
	srv, calls := remindServer(t, id, answer(200, `{"sent":true,"reminder_sent_at":"2031-05-16T18:30:02Z"}`))
	res, err := testReminder().remind(context.Background(), srv.URL, id, 3)
	if err != nil || !res.Sent || res.ReminderSentAt == nil || calls.Load() != 1 {
		t.Fatalf("remind: %+v %v after %d calls", res, err, calls.Load())
	}
	// The exported entry point, as `sbor remind` calls it (a base URL with a path works too).
	if err := Remind(context.Background(), srv.URL+"/", id, 1); err != nil {
		t.Fatal(err)
	}
}

func TestRemindAlreadySentIsSuccess(t *testing.T) {
	id := uuid.NewString()
	srv, _ := remindServer(t, id, answer(200, `{"sent":false,"reminder_sent_at":"2031-05-16T18:30:02Z"}`))
	res, err := testReminder().remind(context.Background(), srv.URL, id, 3)
	if err != nil || res.Sent {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestRemindRetriesUnavailable(t *testing.T) {
	id := uuid.NewString()
	srv, calls := remindServer(t, id,
		answer(503, `{"title":"Service Unavailable","detail":"database unavailable"}`),
		answer(429, `{}`),
		answer(200, `{"sent":true,"reminder_sent_at":"2031-05-16T18:30:02Z"}`))
	res, err := testReminder().remind(context.Background(), srv.URL, id, 5)
	if err != nil || !res.Sent || calls.Load() != 3 {
		t.Fatalf("%+v %v after %d calls", res, err, calls.Load())
	}
}

func TestRemindGivesUpAfterAttempts(t *testing.T) {
	id := uuid.NewString()
	srv, calls := remindServer(t, id, answer(502, `{"title":"Bad Gateway"}`))
	_, err := testReminder().remind(context.Background(), srv.URL, id, 4)
	if err == nil || calls.Load() != 4 || !strings.Contains(err.Error(), "giving up after 4 attempts") || !strings.Contains(err.Error(), "502") {
		t.Fatalf("%v after %d calls", err, calls.Load())
	}
}

func TestRemindFinalFailures(t *testing.T) {
	id := uuid.NewString()
	for _, tc := range []struct {
		status int
		body   string
		is     error
		says   string
	}{
		{404, `{"title":"Not Found","detail":"event not found"}`, ErrEventNotFound, "has no event " + id},
		{409, `{"title":"Conflict","detail":"event is cancelled"}`, ErrNotRemindable, "event is cancelled"},
		{400, `{"title":"Bad Request"}`, nil, "400"},
	} {
		srv, calls := remindServer(t, id, answer(tc.status, tc.body))
		_, err := testReminder().remind(context.Background(), srv.URL, id, 5)
		if err == nil || calls.Load() != 1 || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%d: %v after %d calls", tc.status, err, calls.Load())
		}
	}
}

func TestRemindRetriesConnectionFailures(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	_, err := testReminder().remind(context.Background(), url, uuid.NewString(), 3)
	if err == nil || !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Fatalf("%v", err)
	}
}

func TestRemindRefusesBadInput(t *testing.T) {
	if err := Remind(context.Background(), "http://e", "42", 1); err == nil || !strings.Contains(err.Error(), "not a UUID") {
		t.Errorf("bad id: %v", err)
	}
	if err := Remind(context.Background(), "", uuid.NewString(), 1); err == nil || !strings.Contains(err.Error(), "SBOR_EVENT_URL") {
		t.Errorf("no URL: %v", err)
	}
}

func TestRemindStopsWithTheContext(t *testing.T) {
	id := uuid.NewString()
	srv, _ := remindServer(t, id, answer(503, `{}`))
	r := testReminder()
	r.backoff, r.maxBackoff = time.Hour, time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.remind(ctx, srv.URL, id, 5)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("%v after %s", err, time.Since(start))
	}
}
