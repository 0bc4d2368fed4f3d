package gateway_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/token"
	"github.com/sbor-dev/sbor/services/gateway"
)

// BenchmarkGateway measures what the gateway costs per request, for an authenticated GET and
// POST, with and without the verified-token cache. The client and the upstream (which answers
// at once) run in the same process: compare the figures between variants, not with zero.
// cpu-µs/op is the process's CPU time per request, which, unlike ns/op, does not grow when
// other programs compete for the machine:
//
//	go test -run '^$' -bench Gateway -benchmem ./services/gateway
func BenchmarkGateway(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"items":[],"next_cursor":""}`)
	}))
	defer upstream.Close()

	_, key, _ := ed25519.GenerateKey(rand.Reader)
	signer := token.NewSigner(key, token.DefaultIssuer, token.DefaultAudience, time.Hour)
	raw, err := signer.Sign(uuid.New(), "user", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	kid := token.KeyID(key.Public().(ed25519.PublicKey))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	get := func(b *testing.B, url string) {
		b.ReportAllocs()
		start := cpuTime()
		defer func() { b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/op") }()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set("Authorization", "Bearer "+raw)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	// The same GET straight to the upstream: what the gateway adds is the difference.
	b.Run("direct/GET", func(b *testing.B) { get(b, upstream.URL+"/api/tickets?limit=1") })
	for _, cache := range []struct {
		name string
		size int
	}{{"uncached", -1}, {"cached", 0}} {
		verifier := &token.Verifier{Keys: token.StaticKeys{kid: key.Public().(ed25519.PublicKey)},
			Issuer: token.DefaultIssuer, Audience: token.DefaultAudience}
		g, err := gateway.New(slog.New(slog.DiscardHandler), gateway.Config{
			Upstreams:      map[gateway.Upstream]string{gateway.UpstreamTicket: upstream.URL},
			TokenCacheSize: cache.size,
		}, verifier, nil)
		if err != nil {
			b.Fatal(err)
		}
		gw := gateway.ServeForTest(b, g)
		for _, rq := range []struct {
			method, path, body string
		}{
			{"GET", "/api/tickets?limit=1", ""},
			{"POST", "/api/events/" + uuid.NewString() + "/tickets", `{"ticket_type_id":"` + uuid.NewString() + `"}`},
		} {
			b.Run(cache.name+"/"+rq.method, func(b *testing.B) {
				b.ReportAllocs()
				start := cpuTime()
				defer func() { b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/op") }()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						var body io.Reader
						if rq.body != "" {
							body = strings.NewReader(rq.body)
						}
						req, _ := http.NewRequest(rq.method, gw+rq.path, body)
						req.Header.Set("Authorization", "Bearer "+raw)
						req.Header.Set("Content-Type", "application/json")
						resp, err := client.Do(req)
						if err != nil {
							b.Fatal(err)
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							b.Fatalf("status %d", resp.StatusCode)
						}
					}
				})
			})
		}
	}
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
