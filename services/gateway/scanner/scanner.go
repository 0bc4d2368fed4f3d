// Package scanner holds the door-scanner page, built from web/scanner by
// hack/scanner-build.sh into dist/ and embedded here, so the gateway serves it at /scan and
// `go build` needs no Node. dist/manifest.json records the hashes of the sources the build
// was made from; this package's test fails when the committed build is stale.
package scanner

import (
	"embed"
	"io/fs"
)

//go:embed dist
var dist embed.FS

// Assets are the files the page consists of, as served under /scan/ (index.html is also
// the page at /scan itself). manifest.json is build bookkeeping and not served.
var Assets = []string{"index.html", "app.js", "app.css", "zxing_reader.wasm"}

// Files returns the built page.
func Files() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is embedded at build time: it is there
	}
	return sub
}
