package web_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sbor-dev/sbor/internal/platform/web"
)

func TestRouterCountsRequestsByRouteTemplate(t *testing.T) {
	r := web.NewRouter(slog.New(slog.DiscardHandler), web.Service("metrics-test"))
	r.Get("/things/{id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	for _, path := range []string{"/things/1", "/things/2", "/nowhere/3"} {
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
	}
	got := testutil.ToFloat64(web.RequestsCounter().WithLabelValues("metrics-test", "GET", "/things/{id}", "418"))
	if got != 2 {
		t.Fatalf("requests of /things/{id}: %v, want 2 (one series for both ids)", got)
	}
	if got := testutil.ToFloat64(web.RequestsCounter().WithLabelValues("metrics-test", "GET", "unmatched", "404")); got != 1 {
		t.Fatalf("unmatched requests: %v, want 1", got)
	}
}

// RouteMetrics records the series Instrument does, from many goroutines at once, whatever
// statuses turn up and in whatever order.
func TestRouteMetricsCountsEveryStatus(t *testing.T) {
	m := web.NewRouteMetrics("route-metrics-test", "GET", "/api/things/{id}")
	statuses := []int{200, 404, 200, 503, 201, 404, 200}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				for _, s := range statuses {
					m.Observe(s, time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	for status, want := range map[string]float64{"200": 2400, "404": 1600, "503": 800, "201": 800} {
		got := testutil.ToFloat64(web.RequestsCounter().WithLabelValues("route-metrics-test", "GET", "/api/things/{id}", status))
		if got != want {
			t.Errorf("status %s counted %v times, want %v", status, got, want)
		}
	}
}

// A method HTTP does not define is counted as OTHER: clients cannot mint series.
func TestRouterCountsInventedMethodsAsOther(t *testing.T) {
	r := web.NewRouter(slog.New(slog.DiscardHandler), web.Service("metrics-methods-test"))
	r.Get("/things", func(w http.ResponseWriter, r *http.Request) {}) // chi runs no middleware before a first route
	for _, m := range []string{"BREW", "PROPFIND", "X-1"} {
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(m, "/nowhere", nil))
	}
	if got := testutil.ToFloat64(web.RequestsCounter().WithLabelValues("metrics-methods-test", "OTHER", "unmatched", "405")); got != 3 {
		t.Errorf("invented methods counted %v times as OTHER, want 3", got)
	}
}
