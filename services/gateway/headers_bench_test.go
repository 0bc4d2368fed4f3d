package gateway

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkHeaderRules measures the header rules a proxied GET goes through: the client's
// request stripped of what only the gateway may set, the service's answer cleaned.
//
//	go test -run '^$' -bench HeaderRules -benchmem ./services/gateway
func BenchmarkHeaderRules(b *testing.B) {
	const request = "GET /api/tickets?limit=1 HTTP/1.1\r\nHost: gateway.example\r\nUser-Agent: Go-http-client/1.1\r\n" +
		"Authorization: Bearer eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiJ4In0.c2ln\r\nAccept-Encoding: gzip\r\n\r\n"
	const answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Request-Id: 0123456789abcdef\r\n" +
		"Date: Sat, 28 Nov 2026 10:00:00 GMT\r\nContent-Length: 2\r\n\r\n"
	for _, rules := range []bool{false, true} {
		name := "parse-only"
		if rules {
			name = "parse-and-rules" // the rules cost the difference
		}
		b.Run(name, func(b *testing.B) {
			var req fasthttp.RequestHeader
			var resp fasthttp.ResponseHeader
			var rr, ar strings.Reader
			br, bar := bufio.NewReader(&rr), bufio.NewReader(&ar)
			b.ReportAllocs()
			for b.Loop() {
				req.Reset()
				resp.Reset()
				rr.Reset(request)
				ar.Reset(answer)
				br.Reset(&rr)
				bar.Reset(&ar)
				if err := req.Read(br); err != nil {
					b.Fatal(err)
				}
				if err := resp.Read(bar); err != nil {
					b.Fatal(err)
				}
				if rules {
					stripClientRequest(&req, false)
					cleanAnswer(&resp)
				}
			}
		})
	}
}
