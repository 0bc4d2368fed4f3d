package web_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

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
