package security

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbor-dev/sbor/test/platform"
)

// password is what every account of the run uses; it is one of the secrets the log scan
// looks for.
const password = "correct-horse-9"

var (
	regMu     sync.Mutex
	platforms []*platform.Platform
	// secrets maps every secret the run handled to what it is.
	secrets = map[string]string{}
	scanned struct{ lines, processes, secrets int }
)

func started() int {
	regMu.Lock()
	defer regMu.Unlock()
	return len(platforms)
}

// secret records s as something no log line may contain.
func secret(what, s string) {
	if len(s) < 8 {
		return
	}
	regMu.Lock()
	defer regMu.Unlock()
	secrets[s] = what
	// A JWT's signature alone is as telling as the token.
	if what == "access token" {
		if parts := strings.Split(s, "."); len(parts) == 3 && len(parts[2]) >= 20 {
			secrets[parts[2]] = "access token signature"
		}
	}
	if rest, ok := strings.CutPrefix(s, "sbr_"); ok {
		secrets[rest] = "refresh token body"
	}
}

// startPlatform starts a platform for the security run: debug logging (the most a process
// ever writes), registered for the log scan, its signing key registered as a secret.
func startPlatform(t *testing.T, env map[string]string) *platform.Platform {
	t.Helper()
	merged := map[string]string{"SBOR_LOG_LEVEL": "debug"}
	for k, v := range env {
		merged[k] = v
	}
	p := platform.Start(t, platform.Options{Env: merged})
	regMu.Lock()
	platforms = append(platforms, p)
	regMu.Unlock()
	registerKeyFile(t, p.Env["SBOR_JWT_PRIVATE_KEY_FILE"])
	secret("password", password)
	return p
}

// registerKeyFile records a PEM private key file's text and each line of its body.
func registerKeyFile(t *testing.T, path string) {
	t.Helper()
	pem, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	secret("private key PEM", string(pem))
	for _, line := range strings.Split(string(pem), "\n") {
		if !strings.HasPrefix(line, "-----") {
			secret("private key PEM line", line)
		}
	}
}

// tokenish finds the long base64url-ish runs of a line that a token or key could hide in.
var tokenish = regexp.MustCompile(`[A-Za-z0-9_\-+/=]{20,}`)

// scanLogsForSecrets returns every log line, of every process of every platform of the run,
// that contains a secret.
func scanLogsForSecrets() []string {
	regMu.Lock()
	defer regMu.Unlock()
	scanned.secrets = len(secrets)
	var leaks []string
	for _, p := range platforms {
		for name, out := range p.Logs() {
			scanned.processes++
			leaks = append(leaks, scanText(name, out)...)
		}
	}
	return leaks
}

// scanText returns the lines of one process's output that hold a secret; regMu is held.
func scanText(name, out string) []string {
	var short []string // secrets checked by substring: passwords and key lines
	for s, what := range secrets {
		if what == "password" || strings.HasPrefix(what, "private key") {
			short = append(short, s)
		}
	}
	var leaks []string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		scanned.lines++
		found := ""
		for _, s := range short {
			if strings.Contains(line, s) {
				found = secrets[s]
				break
			}
		}
		for _, run := range tokenish.FindAllString(line, -1) {
			if found != "" {
				break
			}
			for _, part := range append([]string{run}, strings.Split(run, ".")...) {
				if what, ok := secrets[part]; ok {
					found = what
					break
				}
			}
		}
		if found != "" {
			if len(line) > 400 {
				line = line[:400] + "…"
			}
			leaks = append(leaks, fmt.Sprintf("%s logged a %s: %s", name, found, line))
		}
	}
	return leaks
}

// reply is an HTTP answer.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
	Err    error
	Took   time.Duration
}

var client = &http.Client{
	Timeout:       30 * time.Second,
	Transport:     &http.Transport{MaxIdleConnsPerHost: 64},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// caller is one client of the gateway: anonymous, or a user with a token.
type caller struct {
	p        *platform.Platform
	name     string
	token    string
	refresh  string
	userID   string
	email    string
	password string
	// headers are sent with every request (a forged identity, a client address).
	headers map[string]string
	// via is the HTTP client to use instead of the shared one (another source address).
	via *http.Client
}

// raw is a request body sent as it is.
type raw []byte

// send makes one request. body is nil, raw (sent as is, with Content-Type JSON unless a
// header says otherwise), or anything else (sent as JSON). headers are name, value pairs.
func (c *caller) send(method, path string, body any, headers ...string) reply {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case raw:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.p.Gateway+path, rd)
	if err != nil {
		return reply{Err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	start := time.Now()
	hc := client
	if c.via != nil {
		hc = c.via
	}
	resp, err := hc.Do(req)
	if err != nil {
		return reply{Err: err, Took: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	r := reply{Status: resp.StatusCode, Header: resp.Header, Body: b, Err: err, Took: time.Since(start)}
	if strings.Contains(resp.Header.Get("Content-Type"), "json") {
		_ = json.Unmarshal(b, &r.JSON)
	}
	if tok, ok := r.JSON["access_token"].(string); ok {
		secret("access token", tok)
	}
	if tok, ok := r.JSON["refresh_token"].(string); ok {
		secret("refresh token", tok)
	}
	return r
}

// must sends a request and fails the test unless the answer has status want.
func (c *caller) must(t *testing.T, want int, method, path string, body any, headers ...string) reply {
	t.Helper()
	r := c.send(method, path, body, headers...)
	if r.Err != nil {
		t.Fatalf("%s %s as %s: %v", method, path, c.name, r.Err)
	}
	if r.Status != want {
		t.Fatalf("%s %s as %s: %d, want %d: %s", method, path, c.name, r.Status, want, r.Body)
	}
	checkProblem(t, method+" "+path, r)
	return r
}

// checkProblem fails the test when an error answer is not a well-formed problem+json.
func checkProblem(t *testing.T, what string, r reply) {
	t.Helper()
	if r.Status < 400 {
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: %d with Content-Type %q, want application/problem+json: %.200s", what, r.Status, ct, r.Body)
		return
	}
	if status, _ := r.JSON["status"].(float64); int(status) != r.Status {
		t.Errorf("%s: problem status %v differs from the HTTP status %d", what, r.JSON["status"], r.Status)
	}
	if code, _ := r.JSON["code"].(string); code == "" {
		t.Errorf("%s: problem without a code: %s", what, r.Body)
	}
}

func anonymous(p *platform.Platform) *caller { return &caller{p: p, name: "anonymous"} }

// signUp registers an account and logs it in; headers go with both requests (for example a
// client address behind a trusted proxy).
func signUp(t *testing.T, p *platform.Platform, name string, headers ...string) *caller {
	t.Helper()
	return signUpVia(t, p, nil, name, headers...)
}

// signUpVia is signUp through another HTTP client.
func signUpVia(t *testing.T, p *platform.Platform, via *http.Client, name string, headers ...string) *caller {
	t.Helper()
	c := &caller{p: p, name: name, email: strings.ToLower(name) + "-" + platform.RandomHex(4) + "@example.com", password: password, via: via}
	u := c.must(t, 201, "POST", "/api/auth/register", map[string]string{"email": c.email, "name": name, "password": password}, headers...)
	c.userID = u.JSON["id"].(string)
	c.login(t, headers...)
	return c
}

func (c *caller) login(t *testing.T, headers ...string) {
	t.Helper()
	// Without the current token: a stale one would be refused even on a public route.
	anon := &caller{p: c.p, name: c.name, headers: c.headers, via: c.via}
	pair := anon.must(t, 200, "POST", "/api/auth/login", map[string]string{"email": c.email, "password": c.password}, headers...)
	c.token, c.refresh = pair.JSON["access_token"].(string), pair.JSON["refresh_token"].(string)
}

// organizer signs up and becomes an organizer.
func organizer(t *testing.T, p *platform.Platform, name string) *caller {
	t.Helper()
	c := signUp(t, p, name)
	r := c.must(t, 200, "POST", "/api/users/me/become-organizer", nil)
	c.token, c.refresh = r.JSON["access_token"].(string), r.JSON["refresh_token"].(string)
	return c
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func eventBody(title string, start time.Time) map[string]any {
	return map[string]any{
		"title": title, "description": "Talks.", "venue": "Hall S",
		"starts_at": rfc3339(start), "ends_at": rfc3339(start.Add(3 * time.Hour)),
	}
}

func ticketTypeBody(kind string, quantity int, salesEnd time.Time) map[string]any {
	return map[string]any{
		"type": kind, "price_cents": 1000, "currency": "EUR", "quantity": quantity,
		"sales_start": rfc3339(time.Now().Add(-time.Minute)), "sales_end": rfc3339(salesEnd),
	}
}

var eventStart = time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)

// draft creates a draft event of org and returns its id.
func draft(t *testing.T, org *caller) string {
	t.Helper()
	return org.must(t, 201, "POST", "/api/events", eventBody("Draft "+platform.RandomHex(3), eventStart)).JSON["id"].(string)
}

// published creates a published event of org with a standard ticket type and returns the
// event and type ids.
func published(t *testing.T, org *caller) (eventID, typeID string) {
	t.Helper()
	eventID = draft(t, org)
	org.must(t, 200, "POST", "/api/events/"+eventID+"/publish", nil)
	typeID = org.must(t, 201, "POST", "/api/events/"+eventID+"/ticket-types", ticketTypeBody("standard", 1000, eventStart.Add(-time.Hour))).JSON["id"].(string)
	return eventID, typeID
}

// buy buys a ticket and returns its id and code.
func buy(t *testing.T, c *caller, eventID, typeID string) (id, code string) {
	t.Helper()
	r := c.must(t, 201, "POST", "/api/events/"+eventID+"/tickets", map[string]string{"ticket_type_id": typeID})
	return r.JSON["id"].(string), r.JSON["code"].(string)
}

// items returns a list answer's items.
func items(r reply) []map[string]any {
	rawItems, _ := r.JSON["items"].([]any)
	out := make([]map[string]any, 0, len(rawItems))
	for _, it := range rawItems {
		out = append(out, it.(map[string]any))
	}
	return out
}

// countAll pages through a list and returns how many items it holds.
func (c *caller) countAll(t *testing.T, path string) int {
	t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	n, cursor := 0, ""
	for page := 0; page < 1000; page++ {
		r := c.must(t, 200, "GET", path+sep+"limit=100&cursor="+cursor, nil)
		n += len(items(r))
		if cursor, _ = r.JSON["next_cursor"].(string); cursor == "" {
			return n
		}
	}
	t.Fatalf("%s: more than 1000 pages", path)
	return n
}
