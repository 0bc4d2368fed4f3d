package gateway_test

import (
	"io/fs"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/sbor-dev/sbor/services/gateway"
	"github.com/sbor-dev/sbor/services/gateway/scanner"
)

func scannerGateway(t *testing.T) served {
	t.Helper()
	g, err := gateway.New(slog.New(slog.DiscardHandler), gateway.Config{}, refuseAll{}, func(r gateway.Router) {
		gateway.MountDocs(r)
		gateway.MountScanner(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	return served{URL: gateway.ServeForTest(t, g)}
}

func TestGatewayServesTheScannerPage(t *testing.T) {
	srv := scannerGateway(t)
	index, _ := fs.ReadFile(scanner.Files(), "index.html")
	for _, p := range []string{"/scan", "/scan/", "/scan/index.html"} {
		resp, body := get(t, srv.URL+p, "Authorization", "Bearer junk") // public, even with a bad token
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET %s: %d %s", p, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if string(body) != string(index) {
			t.Fatalf("GET %s is not the built page", p)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self' 'wasm-unsafe-eval'", "connect-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("CSP %q lacks %q", csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "'unsafe-eval'") || strings.Contains(csp, "http") {
			t.Errorf("CSP too loose: %q", csp)
		}
		if resp.Header.Get("ETag") == "" || !strings.Contains(resp.Header.Get("Permissions-Policy"), "camera=(self)") {
			t.Errorf("headers: %v", resp.Header)
		}
	}
	types := map[string]string{"app.js": "text/javascript", "app.css": "text/css", "zxing_reader.wasm": "application/wasm"}
	for name, want := range types {
		resp, body := get(t, srv.URL+"/scan/"+name)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), want) || len(body) == 0 {
			t.Errorf("GET /scan/%s: %d %q, %d bytes", name, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
		again, _ := get(t, srv.URL+"/scan/"+name, "If-None-Match", resp.Header.Get("ETag"))
		if again.StatusCode != http.StatusNotModified {
			t.Errorf("revalidating /scan/%s: %d", name, again.StatusCode)
		}
	}
	for _, p := range []string{"/scan/manifest.json", "/scan/../go.mod", "/scan/nothing.js"} {
		if resp, _ := get(t, srv.URL+p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
	if resp, err := http.Head(srv.URL + "/scan"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD /scan: %v %v", resp, err)
	}
}

// The page keeps to its CSP: no inline script or style, nothing loaded from another host.
func TestScannerPageIsCSPFriendly(t *testing.T) {
	index, err := fs.ReadFile(scanner.Files(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	page := string(index)
	if m := regexp.MustCompile(`<script(?:[^>]*)>`).FindAllString(page, -1); len(m) != 1 || !strings.Contains(m[0], `src="/scan/app.js"`) {
		t.Errorf("scripts: %v", m)
	}
	for _, bad := range []string{"<style", " style=", " onclick=", " onload=", " onsubmit=", "javascript:", "http://", "https://"} {
		if strings.Contains(page, bad) {
			t.Errorf("index.html contains %q", bad)
		}
	}
}

// /scan is the gateway's own page, never a route forwarded to a service.
func TestScannerIsNotAForwardedRoute(t *testing.T) {
	for _, rt := range gateway.Routes {
		if rt.Pattern == gateway.PathScanner || strings.HasPrefix(rt.Pattern, gateway.PathScanner+"/") {
			t.Errorf("%s %s collides with the scanner page", rt.Method, rt.Pattern)
		}
	}
}
