package gateway

import (
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/sbor-dev/sbor/services/gateway/scanner"
)

// PathScanner is the door-scanner page (web/scanner), served by the gateway itself with its
// assets under /scan/.
const PathScanner = "/scan"

// scannerCSP lets the page run its own script and WebAssembly QR decoder, use its own
// stylesheet and talk to its own origin (the API), and nothing else: no inline script, no
// third-party host, no framing. 'wasm-unsafe-eval' allows compiling WebAssembly only, not
// JavaScript eval.
const scannerCSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; " +
	"img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; " +
	"manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var scannerTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".wasm": "application/wasm",
}

// MountScanner serves the scanner page at /scan (and /scan/) and its assets under /scan/.
// It is public: the page logs in through the API like any client.
func MountScanner(r Router) {
	files := scanner.Files()
	for _, name := range scanner.Assets {
		body, err := fs.ReadFile(files, name)
		if err != nil {
			panic("gateway: the scanner page lacks " + name) // embedded at build time
		}
		serve := withScannerHeaders(serveStatic(scannerTypes[path.Ext(name)], body))
		paths := []string{PathScanner + "/" + name}
		if name == "index.html" {
			paths = append(paths, PathScanner, PathScanner+"/")
		}
		for _, p := range paths {
			r.Get(p, serve)
			r.Head(p, serve)
		}
	}
}

func withScannerHeaders(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", scannerCSP)
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Permissions-Policy", "camera=(self), microphone=(), geolocation=()")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if strings.HasSuffix(r.URL.Path, ".wasm") || strings.HasSuffix(r.URL.Path, ".js") {
			h.Set("Cross-Origin-Resource-Policy", "same-origin")
		}
		next(w, r)
	}
}
