package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/sbor-dev/sbor/api"
	"github.com/sbor-dev/sbor/internal/platform/token"
	"github.com/sbor-dev/sbor/services/gateway"
)

type refuseAll struct{}

func (refuseAll) Verify(context.Context, string) (token.Verified, error) {
	return token.Verified{}, errors.New("no tokens in this test")
}

// served is a gateway serving on a loopback port.
type served struct{ URL string }

func docsGateway(t *testing.T) served {
	t.Helper()
	g, err := gateway.New(slog.New(slog.DiscardHandler), gateway.Config{}, refuseAll{}, gateway.MountDocs)
	if err != nil {
		t.Fatal(err)
	}
	return served{URL: gateway.ServeForTest(t, g)}
}

func get(t *testing.T, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestGatewayServesTheOpenAPIDocument(t *testing.T) {
	srv := docsGateway(t)
	resp, body := get(t, srv.URL+gateway.PathOpenAPI)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/yaml") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !bytes.Equal(body, api.Document) {
		t.Fatal("the served document is not the embedded one")
	}
	etag := resp.Header.Get("ETag")
	if etag == "" || resp.Header.Get("X-Request-ID") == "" {
		t.Fatalf("headers: %v", resp.Header)
	}
	again, body := get(t, srv.URL+gateway.PathOpenAPI, "If-None-Match", etag)
	if again.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Fatalf("revalidation: %d with %d bytes", again.StatusCode, len(body))
	}
}

func TestGatewayServesTheReferencePage(t *testing.T) {
	srv := docsGateway(t)
	resp, body := get(t, srv.URL+gateway.PathDocs)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// The browser itself enforces that the page loads nothing from anywhere.
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Fatalf("Content-Security-Policy: %q", csp)
	}
	page, err := api.ReferencePage()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, page) || !bytes.Contains(body, []byte("POST</span>")) {
		t.Fatal("the served page is not the reference page")
	}
	again, _ := get(t, srv.URL+gateway.PathDocs, "If-None-Match", resp.Header.Get("ETag"))
	if again.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidation: %d", again.StatusCode)
	}
}

func TestDocsAnswerHEAD(t *testing.T) {
	srv := docsGateway(t)
	for _, p := range []string{gateway.PathOpenAPI, gateway.PathDocs} {
		resp, err := http.Head(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ContentLength <= 0 {
			t.Errorf("HEAD %s: %d, length %d", p, resp.StatusCode, resp.ContentLength)
		}
	}
}

// The documentation is public even for a caller whose token is invalid, and it is not a
// route the services see.
func TestDocsNeedNoToken(t *testing.T) {
	srv := docsGateway(t)
	for _, p := range []string{gateway.PathOpenAPI, gateway.PathDocs} {
		if resp, _ := get(t, srv.URL+p, "Authorization", "Bearer junk"); resp.StatusCode != http.StatusOK {
			t.Errorf("%s with a junk token: %d", p, resp.StatusCode)
		}
		for _, rt := range gateway.Routes {
			if rt.Pattern == p {
				t.Errorf("%s must not be a forwarded route", p)
			}
		}
	}
}
