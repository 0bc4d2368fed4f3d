package api_test

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/sbor-dev/sbor/api"
)

// TestReferencePageDescribesEveryOperation renders the page and reads it back as HTML.
func TestReferencePageDescribesEveryOperation(t *testing.T) {
	page, err := api.ReferencePage()
	if err != nil {
		t.Fatal(err)
	}
	root, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	var hrefs []string
	var text strings.Builder
	for n := range root.Descendants() {
		switch n.Type {
		case html.TextNode:
			text.WriteString(n.Data + " ")
		case html.ElementNode:
			switch n.Data {
			case "script", "link", "img", "iframe", "object", "embed", "base", "form":
				t.Errorf("the page has a <%s> element: it must be self-contained", n.Data)
			}
			for _, a := range n.Attr {
				switch a.Key {
				case "id":
					if ids[a.Val] {
						t.Errorf("duplicate id %q", a.Val)
					}
					ids[a.Val] = true
				case "href":
					hrefs = append(hrefs, a.Val)
				case "src", "srcset", "style", "background":
					t.Errorf("<%s %s=%q>: no external or inline resource attributes", n.Data, a.Key, a.Val)
				}
				if strings.HasPrefix(a.Key, "on") {
					t.Errorf("<%s %s>: no event handlers", n.Data, a.Key)
				}
			}
		}
	}
	for _, h := range hrefs {
		switch {
		case h == "/api/openapi.yaml":
		case strings.HasPrefix(h, "#"):
			if !ids[h[1:]] {
				t.Errorf("link %q points to no element", h)
			}
		default:
			t.Errorf("link %q leaves the page", h)
		}
	}
	// Only the style sheets: the documented text may well mention "base64url(...)".
	var styles []byte
	for rest := page; ; {
		_, after, ok := bytes.Cut(rest, []byte("<style"))
		if !ok {
			break
		}
		sheet, tail, _ := bytes.Cut(after, []byte("</style>"))
		styles, rest = append(styles, sheet...), tail
	}
	for _, css := range []string{"@import", "url(", "@font-face"} {
		if bytes.Contains(styles, []byte(css)) {
			t.Errorf("the CSS uses %s: it must load nothing", css)
		}
	}

	doc := loadValid(t)
	all := text.String()
	for _, o := range operations(doc) {
		if !ids["op-"+o.op.OperationID] {
			t.Errorf("%s %s has no section", o.method, o.path)
		}
		if !strings.Contains(all, o.op.Summary) || !strings.Contains(all, o.path) {
			t.Errorf("%s %s: its path or summary is not on the page", o.method, o.path)
		}
		for status := range o.op.Responses.Map() {
			if !strings.Contains(all, status) {
				t.Errorf("%s %s: status %s is not on the page", o.method, o.path, status)
			}
		}
	}
	for name := range doc.Components.Schemas {
		if !ids["schema-"+name] {
			t.Errorf("schema %s has no section", name)
		}
	}
	// Fields keep the document's order, not the alphabet's: id comes first in an event.
	i, j := strings.Index(all, `"id": "7f3e2d1c`), strings.Index(all, `"description": "Talks`)
	if i < 0 || j < 0 || i > j {
		t.Error("example fields are not in the document's order")
	}
}
