package notification

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/tracing"
)

// TicketClient lists an event's tickets from the ticket service's internal route
// GET /internal/events/{id}/tickets?status=&cursor=&limit=.
type TicketClient struct {
	// BaseURL is the ticket service's URL, without a trailing path.
	BaseURL string
	HTTP    *http.Client
}

// NewTicketClient returns a client of the ticket service at baseURL.
func NewTicketClient(baseURL string) *TicketClient {
	return &TicketClient{BaseURL: strings.TrimSuffix(baseURL, "/"), HTTP: &http.Client{Timeout: 10 * time.Second, Transport: tracing.Transport(nil)}}
}

type holderJSON struct {
	TicketID uuid.UUID `json:"ticket_id"`
	UserID   uuid.UUID `json:"user_id"`
	Status   string    `json:"status"`
}

type holderPageJSON struct {
	Items      []holderJSON `json:"items"`
	NextCursor string       `json:"next_cursor"`
}

// maxHolderPageBytes bounds a page's body: 100 tickets take about 10 KiB.
const maxHolderPageBytes = 4 << 20

// Holders returns one page of the event's tickets with the given status (AnyStatus for
// all). Every failure — the service unreachable, an error status, an unreadable page — is
// an ordinary error: the message is retried, never skipped.
func (c *TicketClient) Holders(ctx context.Context, eventID uuid.UUID, status, cursor string, limit int) (HolderPage, error) {
	q := url.Values{}
	if status != "" {
		q.Set("status", status)
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	u := c.BaseURL + "/internal/events/" + eventID.String() + "/tickets"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return HolderPage{}, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return HolderPage{}, fmt.Errorf("ticket service: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHolderPageBytes+1))
	if err != nil {
		return HolderPage{}, fmt.Errorf("ticket service: read holders: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return HolderPage{}, fmt.Errorf("ticket service: GET %s: %s: %s", req.URL.Path, resp.Status, snippet(body))
	}
	if len(body) > maxHolderPageBytes {
		return HolderPage{}, fmt.Errorf("ticket service: holders page exceeds %d bytes", maxHolderPageBytes)
	}
	var page holderPageJSON
	if err := json.Unmarshal(body, &page); err != nil {
		return HolderPage{}, fmt.Errorf("ticket service: holders page: %w", err)
	}
	out := HolderPage{Items: make([]Holder, 0, len(page.Items)), NextCursor: page.NextCursor}
	for _, h := range page.Items {
		if h.UserID == uuid.Nil {
			return HolderPage{}, fmt.Errorf("ticket service: ticket %s without user_id", h.TicketID)
		}
		out.Items = append(out.Items, Holder{TicketID: h.TicketID, UserID: h.UserID, Status: h.Status})
	}
	return out, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
