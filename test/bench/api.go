package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// client speaks HTTP to the platform with one pooled transport, sized for the concurrency
// so that no request waits for a connection or dials a new one mid-run.
type client struct {
	http *http.Client
}

func newClient(conns int) *client {
	return &client{http: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        4 * conns,
			MaxIdleConnsPerHost: 2 * conns,
			IdleConnTimeout:     90 * time.Second,
		},
	}}
}

// answer is an HTTP response read in full.
type answer struct {
	status int
	body   []byte
}

// code is the problem+json code of an error answer.
func (a answer) code() string {
	var p struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(a.body, &p)
	return p.Code
}

func (c *client) do(ctx context.Context, method, url string, body []byte, header http.Header) (answer, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return answer{}, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	return answer{status: resp.StatusCode, body: raw}, nil
}

// must sends a JSON request and decodes the answer into out, failing unless the status is
// want.
func (c *client) must(ctx context.Context, want int, method, url, token string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	a, err := c.do(ctx, method, url, body, h)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	if a.status != want {
		return fmt.Errorf("%s %s: status %d, want %d: %s", method, url, a.status, want, a.body)
	}
	if out != nil {
		if err := json.Unmarshal(a.body, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, url, err)
		}
	}
	return nil
}

// user is a registered account with an access token.
type user struct {
	ID    string
	Token string
}

const password = "correct-horse-battery-9"

func (c *client) signUp(ctx context.Context, gateway, name string) (user, error) {
	email := strings.ToLower(name) + "-" + randomHex(4) + "@bench.example"
	var u struct {
		ID string `json:"id"`
	}
	if err := c.must(ctx, http.StatusCreated, "POST", gateway+"/api/auth/register", "",
		map[string]string{"email": email, "name": name, "password": password}, &u); err != nil {
		return user{}, err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := c.must(ctx, http.StatusOK, "POST", gateway+"/api/auth/login", "",
		map[string]string{"email": email, "password": password}, &tok); err != nil {
		return user{}, err
	}
	return user{ID: u.ID, Token: tok.AccessToken}, nil
}

func (c *client) organizer(ctx context.Context, gateway string) (user, error) {
	u, err := c.signUp(ctx, gateway, "Organizer")
	if err != nil {
		return user{}, err
	}
	var r struct {
		AccessToken string `json:"access_token"`
	}
	if err := c.must(ctx, http.StatusOK, "POST", gateway+"/api/users/me/become-organizer", u.Token, nil, &r); err != nil {
		return user{}, err
	}
	u.Token = r.AccessToken
	return u, nil
}

// buyers registers n users, a few at a time (each registration and login hashes a password,
// which the user service bounds to a couple at once).
func (c *client) buyers(ctx context.Context, gateway string, n int) ([]user, error) {
	out := make([]user, n)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := range n {
		g.Go(func() error {
			u, err := c.signUp(ctx, gateway, fmt.Sprintf("Buyer%d", i))
			out[i] = u
			return err
		})
	}
	return out, g.Wait()
}

// publishedEvent creates and publishes an event starting in 30 days.
func (c *client) publishedEvent(ctx context.Context, gateway string, org user, title string) (string, error) {
	start := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
	var ev struct {
		ID string `json:"id"`
	}
	if err := c.must(ctx, http.StatusCreated, "POST", gateway+"/api/events", org.Token, map[string]any{
		"title": title, "description": "A flash sale.", "venue": "Main hall",
		"starts_at": start, "ends_at": start.Add(3 * time.Hour)}, &ev); err != nil {
		return "", err
	}
	return ev.ID, c.must(ctx, http.StatusOK, "POST", gateway+"/api/events/"+ev.ID+"/publish", org.Token, nil, nil)
}

// ticketType creates a type on sale from a minute ago until a day before the event.
func (c *client) ticketType(ctx context.Context, gateway string, org user, eventID, kind string, quantity int) (string, error) {
	now := time.Now().UTC()
	var tt struct {
		ID string `json:"id"`
	}
	err := c.must(ctx, http.StatusCreated, "POST", gateway+"/api/events/"+eventID+"/ticket-types", org.Token, map[string]any{
		"type": kind, "price_cents": 4900, "currency": "EUR", "quantity": quantity,
		"sales_start": now.Add(-time.Minute), "sales_end": now.Add(29 * 24 * time.Hour)}, &tt)
	return tt.ID, err
}

// typeCounter is a type's counter as the public API shows it.
type typeCounter struct {
	ID        string `json:"id"`
	Quantity  int    `json:"quantity"`
	Sold      int    `json:"sold"`
	Available int    `json:"available"`
}

func (c *client) ticketTypes(ctx context.Context, gateway, eventID string) (map[string]typeCounter, error) {
	var list struct {
		Items []typeCounter `json:"items"`
	}
	if err := c.must(ctx, http.StatusOK, "GET", gateway+"/api/events/"+eventID+"/ticket-types", "", nil, &list); err != nil {
		return nil, err
	}
	out := map[string]typeCounter{}
	for _, it := range list.Items {
		out[it.ID] = it
	}
	return out, nil
}

// notification is what GET /api/notifications lists.
type notification struct {
	Type      string    `json:"type"`
	TicketID  *string   `json:"ticket_id"`
	CreatedAt time.Time `json:"created_at"`
}

// notifications pages through one user's notifications.
func (c *client) notifications(ctx context.Context, gateway string, u user) ([]notification, error) {
	var all []notification
	cursor := ""
	for {
		url := gateway + "/api/notifications?limit=100"
		if cursor != "" {
			url += "&cursor=" + cursor
		}
		var page struct {
			Items      []notification `json:"items"`
			NextCursor string         `json:"next_cursor"`
		}
		if err := c.must(ctx, http.StatusOK, "GET", url, u.Token, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all, nil
		}
		cursor = page.NextCursor
	}
}

// purchaseLog collects the tickets the runs bought.
type purchaseLog struct {
	mu         sync.Mutex
	tickets    map[string]boughtTicket // by ticket id
	duplicates map[string]int          // ticket ids answered more than once, by type
}

type boughtTicket struct {
	Run         string
	TypeID      string
	UserIndex   int
	PurchasedAt time.Time
}

func newPurchaseLog() *purchaseLog {
	return &purchaseLog{tickets: map[string]boughtTicket{}, duplicates: map[string]int{}}
}

func (l *purchaseLog) add(id string, t boughtTicket) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.tickets[id]; ok {
		l.duplicates[t.TypeID]++
		return
	}
	l.tickets[id] = t
}

func (l *purchaseLog) countByType() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for _, t := range l.tickets {
		out[t.TypeID]++
	}
	return out
}

func (l *purchaseLog) duplicatesOf(typeID string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.duplicates[typeID]
}

func (l *purchaseLog) snapshot() map[string]boughtTicket {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]boughtTicket, len(l.tickets))
	for id, t := range l.tickets {
		out[id] = t
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
