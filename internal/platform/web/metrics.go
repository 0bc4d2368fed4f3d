package web

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
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
	routes := routeMetricsOf{service: service, byRoute: map[[2]string]*RouteMetrics{}}
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
			routes.get(methodLabel(r.Method), route).Observe(status, time.Since(start))
		})
	}
}

// methodLabel is the method as a label value: any method outside HTTP's own is "OTHER", so a
// client inventing methods cannot add series (and entries to routeMetricsOf) without end.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "OTHER"
}

// routeMetricsOf finds the RouteMetrics of a route once it is known, after routing.
type routeMetricsOf struct {
	service string
	mu      sync.RWMutex
	byRoute map[[2]string]*RouteMetrics // by method and route
}

func (m *routeMetricsOf) get(method, route string) *RouteMetrics {
	key := [2]string{method, route}
	m.mu.RLock()
	rm := m.byRoute[key]
	m.mu.RUnlock()
	if rm != nil {
		return rm
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if rm = m.byRoute[key]; rm == nil {
		rm = NewRouteMetrics(m.service, method, route)
		m.byRoute[key] = rm
	}
	return rm
}

// RequestsCounter is the request counter, for tests.
func RequestsCounter() *prometheus.CounterVec { return httpRequests }

// RouteMetrics records the answered requests of one route in the HTTP metrics: the series
// are looked up once per route and status rather than once per request, which hashes every
// label value each time (4 % of the gateway's CPU per proxied GET). Instrument keeps one per
// route it has seen; the gateway's front end, which knows its routes in advance, one per
// route.
type RouteMetrics struct {
	service, method, route string
	duration               prometheus.Observer

	mu     sync.Mutex                      // serialises additions to counts
	counts atomic.Pointer[[]statusCounter] // copied on write: a request only loads it
}

type statusCounter struct {
	status int
	count  prometheus.Counter
}

// NewRouteMetrics returns the metrics of one route of service.
func NewRouteMetrics(service, method, route string) *RouteMetrics {
	return &RouteMetrics{service: service, method: method, route: route,
		duration: httpDuration.WithLabelValues(service, method, route)}
}

// Observe records one request answered with status after took.
func (m *RouteMetrics) Observe(status int, took time.Duration) {
	m.counter(status).Inc()
	m.duration.Observe(took.Seconds())
}

func (m *RouteMetrics) counter(status int) prometheus.Counter {
	if counts := m.counts.Load(); counts != nil {
		for _, sc := range *counts {
			if sc.status == status {
				return sc.count
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var counts []statusCounter
	if old := m.counts.Load(); old != nil {
		for _, sc := range *old {
			if sc.status == status { // added while this request waited for the lock
				return sc.count
			}
		}
		counts = append(counts, *old...)
	}
	c := httpRequests.WithLabelValues(m.service, m.method, m.route, strconv.Itoa(status))
	counts = append(counts, statusCounter{status, c})
	m.counts.Store(&counts)
	return c
}

// InFlight is the in-flight requests gauge of service.
func InFlight(service string) prometheus.Gauge { return httpInFlight.WithLabelValues(service) }
