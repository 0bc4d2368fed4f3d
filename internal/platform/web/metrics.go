package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// HTTP metrics, labelled by route template (never the raw path, whose ids would explode the
// series count).
var (
	httpRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "sbor_http_requests_total", Help: "HTTP requests answered, by service, method, route template and status code.",
	}, []string{"service", "method", "route", "code"})
	httpDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "sbor_http_request_duration_seconds", Help: "Time to answer an HTTP request, by service, method and route template.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"service", "method", "route"})
	httpInFlight = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sbor_http_requests_in_flight", Help: "HTTP requests being served.",
	}, []string{"service"})
)

// unmatchedRoute labels requests no route matched.
const unmatchedRoute = "unmatched"

// Instrument records request counts, durations and in-flight requests for service.
func Instrument(service string) func(http.Handler) http.Handler {
	inFlight := httpInFlight.WithLabelValues(service)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			inFlight.Inc()
			defer inFlight.Dec()
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			next.ServeHTTP(ww, r)
			route := unmatchedRoute
			if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
				route = rc.RoutePattern()
			}
			status := ww.Status()
			if status == 0 {
				status = http.StatusOK
			}
			ObserveRequest(service, r.Method, route, status, time.Since(start))
		})
	}
}

// RequestsCounter is the request counter, for tests.
func RequestsCounter() *prometheus.CounterVec { return httpRequests }

// ObserveRequest records one answered request in the HTTP metrics, as Instrument does, for a
// server that is not a net/http handler chain (the gateway's fasthttp front end).
func ObserveRequest(service, method, route string, status int, took time.Duration) {
	httpRequests.WithLabelValues(service, method, route, strconv.Itoa(status)).Inc()
	httpDuration.WithLabelValues(service, method, route).Observe(took.Seconds())
}

// InFlight is the in-flight requests gauge of service.
func InFlight(service string) prometheus.Gauge { return httpInFlight.WithLabelValues(service) }
