package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/sbor-dev/sbor/api"
	"github.com/sbor-dev/sbor/internal/platform/web"
)

// Paths of the API's own documentation, served by the gateway itself.
const (
	PathOpenAPI = "/api/openapi.yaml"
	PathDocs    = "/api/docs"
)

// docsCSP lets the reference page use its inline styles and nothing else: no script, no
// font, no image, no connection, from anywhere.
const docsCSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// MountDocs serves the OpenAPI document at /api/openapi.yaml and its human-readable
// reference at /api/docs. Both are public and built into the binary, so they work offline.
func MountDocs(r chi.Router) {
	document := serveStatic("application/yaml; charset=utf-8", api.Document)
	r.Get(PathOpenAPI, document)
	r.Head(PathOpenAPI, document)
	// The page is rendered on first use, not at startup: a gateway that nobody asks for
	// documentation never pays for it.
	page := sync.OnceValues(func() (http.HandlerFunc, error) {
		html, err := api.ReferencePage()
		if err != nil {
			return nil, err
		}
		return serveStatic("text/html; charset=utf-8", html), nil
	})
	reference := func(w http.ResponseWriter, req *http.Request) {
		serve, err := page()
		if err != nil {
			web.Error(w, req, err)
			return
		}
		w.Header().Set("Content-Security-Policy", docsCSP)
		w.Header().Set("Referrer-Policy", "no-referrer")
		serve(w, req)
	}
	r.Get(PathDocs, reference)
	r.Head(PathDocs, reference)
}

// serveStatic serves body with a strong ETag, so clients revalidate cheaply (304) and always
// see the document of the running version.
func serveStatic(contentType string, body []byte) http.HandlerFunc {
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", etag)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	}
}
