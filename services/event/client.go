package event

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/tracing"
)

// Client calls the event service's internal routes; `sbor remind` (the reminder CronJob)
// uses it.
type Client struct {
	// BaseURL is the event service's address, for example http://sbor-event:8080.
	BaseURL string
	// HTTP defaults to a client with a 10-second timeout.
	HTTP *http.Client
}

// Remind asks the event service to send the event's reminder. It is safe to call again:
// the reminder goes out at most once, and RemindResult.Sent says whether this call sent it.
func (c Client) Remind(ctx context.Context, id uuid.UUID) (RemindResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.BaseURL, "/")+"/internal/events/"+id.String()+"/remind", nil)
	if err != nil {
		return RemindResult{}, err
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second, Transport: tracing.Transport(nil)}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return RemindResult{}, fmt.Errorf("remind event %s: %w", id, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		var p struct {
			Code   string `json:"code"`
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(body, &p)
		return RemindResult{}, &RemindError{Status: resp.StatusCode, Code: p.Code, Detail: p.Detail}
	}
	var out remindJSON
	if err := json.Unmarshal(body, &out); err != nil {
		return RemindResult{}, fmt.Errorf("remind event %s: bad answer: %w", id, err)
	}
	return RemindResult{Sent: out.Sent, SentAt: out.ReminderSentAt}, nil
}

// RemindError is a refusal from the event service: 404 for an unknown event, 409 for one
// that is not published.
type RemindError struct {
	Status int
	Code   string
	Detail string
}

func (e *RemindError) Error() string {
	return fmt.Sprintf("event service answered %d %s: %s", e.Status, e.Code, e.Detail)
}

// Retryable reports whether trying again later may succeed (the service or its database
// was unavailable).
func (e *RemindError) Retryable() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests
}
