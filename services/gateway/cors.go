package gateway

import (
	"net/http"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/sbor-dev/sbor/internal/platform/identity"
)

// CORS settings. Preflights (OPTIONS) are answered by rs/cors on the fallback router; the
// forwarded routes' answers get their headers from corsPolicy, with rs/cors's rules for an
// actual request.
var (
	corsMethods        = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete}
	corsAllowedHeaders = []string{"Authorization", "Content-Type", "Idempotency-Key"}
	corsExposedHeaders = []string{identity.HeaderRequestID, "Location", "Retry-After"}
)

const corsMaxAge = 600

// corsPolicy adds CORS headers to the answers of forwarded routes; nil allows no origin.
type corsPolicy struct {
	any      bool
	exact    map[string]bool
	patterns [][2]string // prefix and suffix around one "*", as rs/cors allows
	exposed  string
}

func newCORSPolicy(origins []string) *corsPolicy {
	if len(origins) == 0 {
		return nil
	}
	p := &corsPolicy{exact: map[string]bool{}}
	for _, o := range origins {
		o = strings.ToLower(o)
		switch before, after, wildcard := strings.Cut(o, "*"); {
		case o == "*":
			p.any = true
		case wildcard:
			p.patterns = append(p.patterns, [2]string{before, after})
		default:
			p.exact[o] = true
		}
	}
	exposed := make([]string, len(corsExposedHeaders))
	for i, h := range corsExposedHeaders {
		exposed[i] = http.CanonicalHeaderKey(h)
	}
	p.exposed = strings.Join(exposed, ", ")
	return p
}

func (p *corsPolicy) allows(origin string) bool {
	if p.any {
		return true
	}
	origin = strings.ToLower(origin)
	if p.exact[origin] {
		return true
	}
	for _, w := range p.patterns {
		if len(origin) >= len(w[0])+len(w[1]) && strings.HasPrefix(origin, w[0]) && strings.HasSuffix(origin, w[1]) {
			return true
		}
	}
	return false
}

// apply adds the headers of an answer to an actual (not preflight) cross-origin request.
func (p *corsPolicy) apply(req *fasthttp.RequestHeader, resp *fasthttp.ResponseHeader) {
	if p == nil {
		return
	}
	resp.Add("Vary", "Origin")
	origin := req.Peek("Origin")
	if len(origin) == 0 || !p.allows(string(origin)) {
		return
	}
	if p.any {
		resp.Set("Access-Control-Allow-Origin", "*")
	} else {
		resp.SetBytesV("Access-Control-Allow-Origin", origin)
	}
	resp.Set("Access-Control-Expose-Headers", p.exposed)
}
