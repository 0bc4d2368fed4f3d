// Package platform starts the whole of Sbor the way a user runs it, for the end-to-end,
// chaos and security suites: the sbor binary built once, every target as its own process
// (gateway, user, event, ticket, notification), real PostgreSQL (a database per service) and
// real Apache Kafka; clients speak nothing but HTTP through the gateway.
package platform

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sbor-dev/sbor/internal/freeport"
	"github.com/sbor-dev/sbor/internal/pgserver"
	"github.com/sbor-dev/sbor/internal/testkit/kafkaserver"
	"github.com/sbor-dev/sbor/internal/testkit/kafkatest"
	"github.com/sbor-dev/sbor/internal/testkit/pgtest"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// Binary builds cmd/sbor once per test process.
func Binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sbor-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "sbor")
		cmd := exec.Command("go", "build", "-o", binary, "./cmd/sbor")
		cmd.Dir = RepoRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

func RepoRoot() string {
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "."
		}
		dir = parent
	}
}

// FreeAddr returns a loopback address nothing listens on, for a process to bind.
func FreeAddr(t *testing.T) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// process is one running target.
type process struct {
	name string
	// target is what `sbor <target>` runs; it differs from name for a second instance.
	target string
	cmd    *exec.Cmd
	addr   string
	log    *lockedBuffer
	env    []string
	t      *testing.T
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Platform is a running Sbor: one process per target.
type Platform struct {
	t       *testing.T
	Gateway string
	mu      sync.Mutex
	procs   map[string]*process
	// Env is the environment every process gets (database URLs, brokers, topic prefix).
	Env map[string]string
	// Postgres is the platform's own PostgreSQL server with Options.OwnPostgres, else nil.
	Postgres *pgserver.Server
	// Kafka is the platform's own Apache Kafka broker with Options.OwnKafka, else nil.
	Kafka *kafkaserver.Server
}

// Options tune a platform for a test.
type Options struct {
	// Env adds or overrides variables for every process.
	Env map[string]string
	// OwnPostgres gives the platform a PostgreSQL server of its own (Platform.Postgres), so
	// a test can stop and restart it without touching other tests. It is durable (fsync
	// off, but no acknowledged commit is lost when PostgreSQL itself stops or crashes)
	// unless FastPostgres is set.
	OwnPostgres  bool
	FastPostgres bool
	// OwnKafka gives the platform an Apache Kafka broker of its own (Platform.Kafka), so a
	// test can stop and restart it.
	OwnKafka bool
}

func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Start starts every target as its own process and waits until the gateway and all
// services are ready.
func Start(t *testing.T, opts Options) *Platform {
	t.Helper()
	bin := Binary(t)
	keyFile := filepath.Join(t.TempDir(), "jwt.pem")
	out, err := exec.Command(bin, "keygen").Output()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, out, 0o600); err != nil {
		t.Fatal(err)
	}
	var ownPG *pgserver.Server
	if opts.OwnPostgres {
		ownPG = startPostgres(t, !opts.FastPostgres)
	}
	var ownKafka *kafkaserver.Server
	var brokers []string
	if opts.OwnKafka {
		ownKafka = startKafka(t)
		brokers = []string{ownKafka.Brokers()}
	} else {
		brokers = kafkatest.Brokers(t)
	}
	databaseURL := func(service string) string {
		if ownPG == nil {
			return pgtest.NewDatabase(t)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := ownPG.CreateDatabase(ctx, service); err != nil {
			t.Fatal(err)
		}
		return ownPG.URL(service)
	}
	addrs := map[string]string{}
	for _, name := range []string{"gateway", "user", "event", "ticket", "notification"} {
		addrs[name] = FreeAddr(t)
	}
	url := func(name string) string { return "http://" + addrs[name] }
	common := map[string]string{
		"SBOR_LOG_FORMAT":                "json",
		"SBOR_LOG_LEVEL":                 "info",
		"KAFKA_BROKERS":                  strings.Join(brokers, ","),
		"SBOR_KAFKA_TOPIC_PREFIX":        "e2e" + RandomHex(4) + ".",
		"SBOR_JWT_PRIVATE_KEY_FILE":      keyFile,
		"SBOR_USER_URL":                  url("user"),
		"SBOR_EVENT_URL":                 url("event"),
		"SBOR_TICKET_URL":                url("ticket"),
		"SBOR_NOTIFICATION_URL":          url("notification"),
		"SBOR_USER_DATABASE_URL":         databaseURL("user"),
		"SBOR_EVENT_DATABASE_URL":        databaseURL("event"),
		"SBOR_TICKET_DATABASE_URL":       databaseURL("ticket"),
		"SBOR_NOTIFICATION_DATABASE_URL": databaseURL("notification"),
		"SBOR_REMINDER_INTERVAL":         "1s",
		"SBOR_LOGIN_MAX_PER_IP":          "100000",
	}
	for k, v := range opts.Env {
		common[k] = v
	}
	p := &Platform{t: t, procs: map[string]*process{}, Env: common, Gateway: url("gateway"), Postgres: ownPG, Kafka: ownKafka}
	// Services first, so the gateway's first JWKS fetch finds the user service.
	for _, name := range []string{"user", "event", "ticket", "notification", "gateway"} {
		p.start(name, addrs[name])
	}
	for _, name := range []string{"user", "event", "ticket", "notification", "gateway"} {
		p.waitReady(name)
	}
	t.Cleanup(p.Stop)
	return p
}

func (p *Platform) start(name, addr string) {
	p.t.Helper()
	p.startAs(name, name, addr)
}

func (p *Platform) startAs(name, target, addr string) {
	p.t.Helper()
	env := os.Environ()
	for k, v := range p.Env {
		env = append(env, k+"="+v)
	}
	env = append(env, "SBOR_HTTP_ADDR="+addr, "SBOR_METRICS_ADDR="+FreeAddr(p.t))
	proc := &process{name: name, target: target, addr: addr, log: &lockedBuffer{}, env: env, t: p.t}
	p.mu.Lock()
	p.procs[name] = proc
	p.mu.Unlock()
	proc.run()
}

func (p *Platform) proc(name string) *process {
	p.mu.Lock()
	defer p.mu.Unlock()
	proc, ok := p.procs[name]
	if !ok {
		p.t.Fatalf("platform: no process %q", name)
	}
	return proc
}

// StartInstance starts one more process of target under name (for example a second
// "notification" as "notification-2", on its own address, sharing the database and the
// consumer group) and waits until it is ready.
func (p *Platform) StartInstance(name, target string) {
	p.t.Helper()
	p.startAs(name, target, FreeAddr(p.t))
	p.waitReady(name)
}

// URL returns the base URL of a process, for calls that bypass the gateway (/readyz).
func (p *Platform) URL(name string) string { return "http://" + p.proc(name).addr }

// Ready reports whether a process answers /readyz with 200.
func (p *Platform) Ready(name string) bool {
	resp, err := probeClient.Get(p.URL(name) + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

var probeClient = &http.Client{Timeout: 3 * time.Second}

// Running reports whether a process is alive.
func (p *Platform) Running(name string) bool {
	proc := p.proc(name)
	return proc.cmd != nil && proc.cmd.ProcessState == nil
}

// startPostgres starts a PostgreSQL server for one platform, stopped when the test ends.
func startPostgres(t *testing.T, durable bool) *pgserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := pgserver.Start(ctx, pgserver.Options{Dir: filepath.Join(t.TempDir(), "postgres"), Fast: !durable})
	if err != nil {
		t.Fatalf("platform: own PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("platform: stopping own PostgreSQL: %v", err)
		}
	})
	return srv
}

// startKafka starts an Apache Kafka broker for one platform, stopped when the test ends.
func startKafka(t *testing.T) *kafkaserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	srv, err := kafkaserver.Start(ctx, kafkaserver.Options{Dir: filepath.Join(t.TempDir(), "kafka")})
	if err != nil {
		t.Fatalf("platform: own Apache Kafka: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("platform: stopping own Apache Kafka: %v", err)
		}
	})
	return srv
}

func (proc *process) run() {
	proc.t.Helper()
	target := proc.target
	if target == "" {
		target = proc.name
	}
	cmd := exec.Command(Binary(proc.t), target)
	cmd.Env = proc.env
	cmd.Stdout = proc.log
	cmd.Stderr = proc.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		proc.t.Fatal(err)
	}
	proc.cmd = cmd
}

func (p *Platform) waitReady(name string) {
	p.t.Helper()
	proc := p.proc(name)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + proc.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if proc.cmd.ProcessState != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatalf("%s did not become ready; its log:\n%s", name, proc.log.String())
}

// Kill stops a target with SIGKILL.
func (p *Platform) Kill(name string) {
	proc := p.proc(name)
	_ = proc.cmd.Process.Kill()
	_ = proc.cmd.Wait()
}

// Restart starts a killed target again and waits until it is ready.
func (p *Platform) Restart(name string) {
	p.proc(name).run()
	p.waitReady(name)
}

// RestartNoWait starts a killed target again without waiting for readiness (for a target
// that cannot be ready yet, say while its database is down).
func (p *Platform) RestartNoWait(name string) {
	p.proc(name).run()
}

// Stop ends every process with SIGTERM (graceful shutdown) and fails the test if one does
// not stop in time.
func (p *Platform) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, proc := range p.procs {
		if proc.cmd.ProcessState != nil {
			continue
		}
		_ = proc.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- proc.cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(25 * time.Second):
			_ = proc.cmd.Process.Kill()
			p.t.Errorf("%s did not stop within 25s of SIGTERM", name)
		}
	}
	if p.t.Failed() {
		for name, proc := range p.procs {
			p.t.Logf("---- %s log (last 4 KiB) ----\n%s", name, tail(proc.log.String(), 4096))
		}
	}
}

// Logs returns every process's output so far.
func (p *Platform) Logs() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]string{}
	for name, proc := range p.procs {
		out[name] = proc.log.String()
	}
	return out
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// LogLines returns every JSON log line of every process.
func (p *Platform) LogLines() []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []map[string]any
	for _, proc := range p.procs {
		sc := bufio.NewScanner(strings.NewReader(proc.log.String()))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				out = append(out, m)
			}
		}
	}
	return out
}

// Response is an HTTP answer.
type Response struct {
	Status  int
	Header  http.Header
	Body    []byte
	JSON    map[string]any
	Elapsed time.Duration
}

// Client talks to the gateway as one user.
type Client struct {
	P      *Platform
	Token  string
	UserID string
	Email  string
}

var httpClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// Do sends a request through the gateway.
func (c *Client) Do(method, path string, body any, headers ...string) Response {
	c.P.t.Helper()
	var rd io.Reader
	if body != nil {
		if raw, ok := body.([]byte); ok {
			rd = bytes.NewReader(raw)
		} else {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, c.P.Gateway+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	start := time.Now()
	resp, err := httpClient.Do(req)
	if err != nil {
		c.P.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := Response{Status: resp.StatusCode, Header: resp.Header, Body: raw, Elapsed: time.Since(start)}
	if strings.Contains(resp.Header.Get("Content-Type"), "json") {
		_ = json.Unmarshal(raw, &r.JSON)
	}
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		c.P.t.Errorf("%s %s: %d without problem+json (%q)", method, path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if err := checkContract(method, path, resp.StatusCode, resp.Header, raw); err != nil {
		c.P.t.Errorf("%s %s: the answer breaks the OpenAPI document: %v", method, path, err)
	}
	if resp.StatusCode >= 500 && resp.StatusCode != 503 {
		c.P.t.Errorf("%s %s: server error %d: %s", method, path, resp.StatusCode, raw)
	}
	return r
}

// Must sends a request and fails the test unless the status is want.
func (c *Client) Must(want int, method, path string, body any, headers ...string) Response {
	c.P.t.Helper()
	r := c.Do(method, path, body, headers...)
	if r.Status != want {
		c.P.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	return r
}

// Anonymous returns a client without a token.
func (p *Platform) Anonymous() *Client { return &Client{P: p} }

// SignUp registers a user and logs in.
func (p *Platform) SignUp(name string) *Client {
	p.t.Helper()
	email := strings.ToLower(name) + "-" + RandomHex(3) + "@example.com"
	c := &Client{P: p, Email: email}
	u := c.Must(201, "POST", "/api/auth/register", map[string]string{"email": email, "name": name, "password": "correct-horse-9"})
	c.UserID = u.JSON["id"].(string)
	tok := c.Must(200, "POST", "/api/auth/login", map[string]string{"email": email, "password": "correct-horse-9"})
	c.Token = tok.JSON["access_token"].(string)
	return c
}

// Organizer signs up and becomes an organizer.
func (p *Platform) Organizer(name string) *Client {
	p.t.Helper()
	c := p.SignUp(name)
	r := c.Must(200, "POST", "/api/users/me/become-organizer", nil)
	c.Token = r.JSON["access_token"].(string)
	return c
}

// Eventually polls cond until it holds or the timeout passes.
func Eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

func Items(r Response) []map[string]any {
	raw, _ := r.JSON["items"].([]any)
	out := make([]map[string]any, 0, len(raw))
	for _, it := range raw {
		out = append(out, it.(map[string]any))
	}
	return out
}
