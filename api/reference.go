package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
)

// The reference page is rendered on the server from the parsed document: one self-contained
// HTML file with inline CSS and no script, font or image from anywhere, so it works offline
// and behind the strictest Content-Security-Policy.

//go:embed reference.html
var referenceTemplate string

// ReferencePage returns the HTML reference of Document. It is rendered once and cached.
func ReferencePage() ([]byte, error) { return referencePage() }

var referencePage = sync.OnceValues(func() ([]byte, error) {
	loader := openapi3.NewLoader()
	loader.IncludeOrigin = true // document order of paths, operations and properties
	doc, err := loader.LoadFromData(Document)
	if err != nil {
		return nil, fmt.Errorf("api: parse openapi.yaml: %w", err)
	}
	return RenderReference(doc)
})

// RenderReference renders doc as a self-contained HTML page. doc should be loaded with
// IncludeOrigin so that paths and fields keep the order they are written in.
func RenderReference(doc *openapi3.T) ([]byte, error) {
	tmpl, err := template.New("reference").Parse(referenceTemplate)
	if err != nil {
		return nil, fmt.Errorf("api: reference template: %w", err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, newPageView(doc)); err != nil {
		return nil, fmt.Errorf("api: render reference: %w", err)
	}
	return buf.Bytes(), nil
}

type pageView struct {
	Title, Version, Summary string
	Description             template.HTML
	Security                []securityView
	Tags                    []tagView
	Responses               []responseView
	Schemas                 []schemaView
}

type securityView struct {
	Name        string
	Scheme      string
	Description template.HTML
}

type tagView struct {
	Name, Anchor string
	Description  template.HTML
	Operations   []operationView
}

type operationView struct {
	Anchor, Method, Path, Summary string
	Description                   template.HTML
	Auth                          authView
	Parameters                    []parameterView
	Body                          *bodyView
	Responses                     []responseView
}

type authView struct{ Label, Class string }

type parameterView struct {
	Name, In    string
	Type        template.HTML
	Required    bool
	Description template.HTML
	Constraints []string
	Example     string
}

type bodyView struct {
	ContentType string
	Required    bool
	Type        template.HTML
	Fields      []fieldView
	Example     string
}

type responseView struct {
	Status, Class string
	// Shared names the components/responses entry a response refers to; such a response is
	// shown as one line linking to its full description.
	Shared, SharedAnchor string
	Description          template.HTML
	Codes                []string
	ContentType          string
	Type                 template.HTML
	Headers              []headerView
	Example              string
}

type headerView struct {
	Name        string
	Required    bool
	Description template.HTML
}

type fieldView struct {
	Name        string
	Type        template.HTML
	Required    bool
	Description template.HTML
	Constraints []string
}

type schemaView struct {
	Name, Anchor string
	Type         template.HTML
	Description  template.HTML
	Fields       []fieldView
	Constraints  []string
}

var httpMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"}

func newPageView(doc *openapi3.T) pageView {
	p := pageView{Title: doc.Info.Title, Version: doc.Info.Version, Summary: doc.Info.Summary, Description: prose(doc.Info.Description)}
	if doc.Components != nil {
		for _, name := range sortedKeys(doc.Components.SecuritySchemes, func(r *openapi3.SecuritySchemeRef) int { return line(r.Origin, r.Value.Origin) }) {
			s := doc.Components.SecuritySchemes[name].Value
			scheme := s.Type
			if s.Type == "http" {
				scheme = "HTTP " + s.Scheme
				if s.BearerFormat != "" {
					scheme += " (" + s.BearerFormat + ")"
				}
			}
			p.Security = append(p.Security, securityView{Name: name, Scheme: scheme, Description: prose(s.Description)})
		}
	}

	byTag := map[string]*tagView{}
	for _, t := range doc.Tags {
		p.Tags = append(p.Tags, tagView{Name: t.Name, Anchor: "tag-" + slug(t.Name), Description: prose(t.Description)})
	}
	for i := range p.Tags {
		byTag[p.Tags[i].Name] = &p.Tags[i]
	}
	paths := doc.Paths.Map()
	for _, path := range sortedKeys(paths, func(pi *openapi3.PathItem) int { return line(pi.Origin) }) {
		item := paths[path]
		type methodOp struct {
			method string
			op     *openapi3.Operation
		}
		var ops []methodOp
		for _, m := range httpMethods {
			if op := item.GetOperation(m); op != nil {
				ops = append(ops, methodOp{m, op})
			}
		}
		sort.SliceStable(ops, func(i, j int) bool { return line(ops[i].op.Origin) < line(ops[j].op.Origin) })
		for _, mo := range ops {
			tag := "Other"
			if len(mo.op.Tags) > 0 {
				tag = mo.op.Tags[0]
			}
			tv := byTag[tag]
			if tv == nil {
				p.Tags = append(p.Tags, tagView{Name: tag, Anchor: "tag-" + slug(tag)})
				// p.Tags may have moved: index again.
				for i := range p.Tags {
					byTag[p.Tags[i].Name] = &p.Tags[i]
				}
				tv = byTag[tag]
			}
			tv.Operations = append(tv.Operations, newOperationView(doc, mo.method, path, item, mo.op))
		}
	}
	p.Tags = slices.DeleteFunc(p.Tags, func(t tagView) bool { return len(t.Operations) == 0 })

	if doc.Components != nil {
		responses := doc.Components.Responses
		for _, name := range sortedKeys(responses, func(r *openapi3.ResponseRef) int { return line(r.Origin, r.Value.Origin) }) {
			rv := newResponseView("", responses[name].Value)
			rv.Shared, rv.SharedAnchor = words(name), "response-"+name
			if c := responses[name].Value.Content["application/problem+json"]; c != nil {
				if ex, ok := c.Example.(map[string]any); ok && ex["status"] != nil {
					rv.Status = fmt.Sprint(ex["status"])
					rv.Class = statusClass(rv.Status)
				}
			}
			p.Responses = append(p.Responses, rv)
		}

		schemas := doc.Components.Schemas
		for _, name := range sortedKeys(schemas, func(r *openapi3.SchemaRef) int { return line(r.Origin, r.Value.Origin) }) {
			s := schemas[name].Value
			sv := schemaView{Name: name, Anchor: "schema-" + name, Description: prose(s.Description)}
			if isObject(s) {
				sv.Type = "object"
				sv.Fields = fields(s)
			} else {
				sv.Type = typeHTML(&openapi3.SchemaRef{Value: s})
				sv.Constraints = constraints(s)
			}
			p.Schemas = append(p.Schemas, sv)
		}
	}
	return p
}

func newOperationView(doc *openapi3.T, method, path string, item *openapi3.PathItem, op *openapi3.Operation) operationView {
	ov := operationView{
		Anchor: "op-" + strings.ToLower(method) + "-" + slug(path), Method: method, Path: path,
		Summary: op.Summary, Description: prose(op.Description), Auth: auth(doc, op),
	}
	if op.OperationID != "" {
		ov.Anchor = "op-" + op.OperationID
	}

	// Path-level parameters apply unless the operation redefines them.
	params := slices.Clone(op.Parameters)
	for _, pp := range item.Parameters {
		if params.GetByInAndName(pp.Value.In, pp.Value.Name) == nil {
			params = append(openapi3.Parameters{pp}, params...)
		}
	}
	for _, pr := range params {
		pv := pr.Value
		v := parameterView{Name: pv.Name, In: pv.In, Required: pv.Required, Description: prose(pv.Description)}
		if pv.Schema != nil {
			v.Type = typeHTML(pv.Schema)
			v.Constraints = constraints(pv.Schema.Value)
		}
		if pv.Example != nil {
			v.Example = fmt.Sprint(pv.Example)
		}
		ov.Parameters = append(ov.Parameters, v)
	}

	if op.RequestBody != nil && op.RequestBody.Value != nil {
		rb := op.RequestBody.Value
		if ct, mt := firstMediaType(rb.Content); mt != nil {
			bv := &bodyView{ContentType: ct, Required: rb.Required, Example: example(mt)}
			if mt.Schema != nil {
				bv.Type = typeHTML(mt.Schema)
				if isObject(mt.Schema.Value) {
					bv.Fields = fields(mt.Schema.Value)
				}
			}
			ov.Body = bv
		}
	}

	if op.Responses != nil {
		statuses := sortedKeys(op.Responses.Map(), nil)
		for _, status := range statuses {
			rr := op.Responses.Value(status)
			rv := newResponseView(status, rr.Value)
			if name, ok := strings.CutPrefix(rr.Ref, "#/components/responses/"); ok {
				rv.Shared, rv.SharedAnchor = words(name), "response-"+name
			}
			ov.Responses = append(ov.Responses, rv)
		}
	}
	return ov
}

func newResponseView(status string, r *openapi3.Response) responseView {
	rv := responseView{Status: status, Class: statusClass(status), Codes: problemCodes(r)}
	if r.Description != nil {
		rv.Description = prose(*r.Description)
	}
	for _, name := range sortedKeys(r.Headers, nil) {
		if strings.EqualFold(name, "X-Request-ID") {
			continue // on every response; said once in the introduction
		}
		h := r.Headers[name].Value
		rv.Headers = append(rv.Headers, headerView{Name: name, Required: h.Required, Description: prose(h.Description)})
	}
	if ct, mt := firstMediaType(r.Content); mt != nil {
		rv.ContentType = ct
		if mt.Schema != nil {
			rv.Type = typeHTML(mt.Schema)
		}
		rv.Example = example(mt)
	}
	return rv
}

// firstMediaType returns the first of a body's media types by name: every body of this API
// has exactly one.
func firstMediaType(content openapi3.Content) (string, *openapi3.MediaType) {
	keys := sortedKeys(content, nil)
	if len(keys) == 0 {
		return "", nil
	}
	return keys[0], content[keys[0]]
}

// ProblemCodesExtension lists, on an error response, the problem codes it can carry.
const ProblemCodesExtension = "x-problem-codes"

// problemCodes returns a response's x-problem-codes.
func problemCodes(r *openapi3.Response) []string {
	raw, _ := r.Extensions[ProblemCodesExtension].([]any)
	out := make([]string, 0, len(raw))
	for _, c := range raw {
		if s, ok := c.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

var camelHump = regexp.MustCompile(`([a-z])([A-Z])`)

// words turns a component name into a phrase: PayloadTooLarge → Payload too large.
func words(name string) string {
	s := strings.ToLower(camelHump.ReplaceAllString(name, "$1 $2"))
	return strings.ToUpper(s[:1]) + s[1:]
}

func auth(doc *openapi3.T, op *openapi3.Operation) authView {
	reqs := doc.Security
	if op.Security != nil {
		reqs = *op.Security
	}
	anonymous, token := len(reqs) == 0, false
	for _, r := range reqs {
		if len(r) == 0 {
			anonymous = true
		} else {
			token = true
		}
	}
	switch {
	case token && anonymous:
		return authView{"Token optional", "auth-optional"}
	case token:
		return authView{"Bearer token required", "auth-required"}
	default:
		return authView{"Public", "auth-public"}
	}
}

func statusClass(status string) string {
	switch {
	case strings.HasPrefix(status, "2"), strings.HasPrefix(status, "3"):
		return "s-ok"
	case strings.HasPrefix(status, "4"):
		return "s-client"
	default:
		return "s-server"
	}
}

// fields lists an object schema's properties in document order.
func fields(s *openapi3.Schema) []fieldView {
	var out []fieldView
	for _, name := range sortedKeys(s.Properties, func(r *openapi3.SchemaRef) int { return line(r.Origin, r.Value.Origin) }) {
		ps := s.Properties[name]
		desc := ps.Value.Description
		fv := fieldView{Name: name, Type: typeHTML(ps), Required: slices.Contains(s.Required, name), Description: prose(desc)}
		if ps.Ref == "" || !isObject(ps.Value) {
			fv.Constraints = constraints(ps.Value)
		}
		out = append(out, fv)
	}
	return out
}

func isObject(s *openapi3.Schema) bool {
	return s != nil && s.Type != nil && s.Type.Is("object")
}

// componentName returns the name of the schema component a $ref points to, if it does.
func componentName(ref string) (string, bool) {
	return strings.CutPrefix(ref, "#/components/schemas/")
}

// typeHTML describes a schema's type in a few words, linking object components to their
// section.
func typeHTML(sr *openapi3.SchemaRef) template.HTML {
	if sr == nil || sr.Value == nil {
		return "any"
	}
	if name, ok := componentName(sr.Ref); ok && isObject(sr.Value) {
		return template.HTML(`<a href="#schema-` + html.EscapeString(name) + `">` + html.EscapeString(name) + `</a>`)
	}
	s := sr.Value
	var parts []string
	var types []string
	if s.Type != nil {
		types = s.Type.Slice()
	}
	for _, t := range types {
		switch t {
		case "array":
			parts = append(parts, "array of "+string(typeHTML(s.Items)))
		case "null":
			parts = append(parts, "null")
		default:
			word := html.EscapeString(t)
			if s.Format != "" {
				word += ` <span class="fmt">` + html.EscapeString(s.Format) + `</span>`
			}
			if s.ContentMediaType != "" {
				word += ` <span class="fmt">` + html.EscapeString(s.ContentMediaType) + `</span>`
			}
			parts = append(parts, word)
		}
	}
	if len(parts) == 0 {
		return "any"
	}
	return template.HTML(strings.Join(parts, " | "))
}

// constraints lists what a value must be beyond its type.
func constraints(s *openapi3.Schema) []string {
	if s == nil {
		return nil
	}
	var out []string
	if s.Const != nil {
		out = append(out, "always "+jsonText(s.Const))
	}
	if len(s.Enum) > 0 {
		vals := make([]string, len(s.Enum))
		for i, v := range s.Enum {
			vals[i] = jsonText(v)
		}
		out = append(out, "one of "+strings.Join(vals, ", "))
	}
	switch {
	case s.MinLength > 0 && s.MaxLength != nil:
		out = append(out, fmt.Sprintf("%d–%d characters", s.MinLength, *s.MaxLength))
	case s.MinLength > 0:
		out = append(out, fmt.Sprintf("at least %d characters", s.MinLength))
	case s.MaxLength != nil:
		out = append(out, fmt.Sprintf("at most %d characters", *s.MaxLength))
	}
	switch {
	case s.Min != nil && s.Max != nil:
		out = append(out, fmt.Sprintf("%s to %s", number(*s.Min), number(*s.Max)))
	case s.Min != nil:
		out = append(out, "≥ "+number(*s.Min))
	case s.Max != nil:
		out = append(out, "≤ "+number(*s.Max))
	}
	if s.Pattern != "" {
		out = append(out, "matches "+s.Pattern)
	}
	if s.Default != nil {
		out = append(out, "default "+jsonText(s.Default))
	}
	return out
}

func number(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func jsonText(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSpace(buf.String())
}

// example returns a media type's example as indented JSON, its object fields in the order
// the schema lists them.
func example(mt *openapi3.MediaType) string {
	var v any
	switch {
	case mt.Example != nil:
		v = mt.Example
	case len(mt.Examples) > 0:
		first := mt.Examples[sortedKeys(mt.Examples, nil)[0]]
		if first == nil || first.Value == nil {
			return ""
		}
		v = first.Value.Value
	default:
		return ""
	}
	var schema *openapi3.Schema
	if mt.Schema != nil {
		schema = mt.Schema.Value
	}
	var b strings.Builder
	writeJSON(&b, v, schema, "")
	return b.String()
}

func writeJSON(b *strings.Builder, v any, s *openapi3.Schema, indent string) {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			b.WriteString("{}")
			return
		}
		keys := sortedKeys(v, nil)
		if s != nil && len(s.Properties) > 0 {
			order := sortedKeys(s.Properties, func(r *openapi3.SchemaRef) int { return line(r.Origin, r.Value.Origin) })
			rank := map[string]int{}
			for i, k := range order {
				rank[k] = i
			}
			sort.SliceStable(keys, func(i, j int) bool {
				ri, iok := rank[keys[i]]
				rj, jok := rank[keys[j]]
				switch {
				case iok && jok:
					return ri < rj
				default:
					return iok && !jok
				}
			})
		}
		b.WriteString("{\n")
		for i, k := range keys {
			var child *openapi3.Schema
			if s != nil && s.Properties[k] != nil {
				child = s.Properties[k].Value
			}
			b.WriteString(indent + "  " + jsonText(k) + ": ")
			writeJSON(b, v[k], child, indent+"  ")
			if i < len(keys)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(indent + "}")
	case []any:
		if len(v) == 0 {
			b.WriteString("[]")
			return
		}
		var child *openapi3.Schema
		if s != nil && s.Items != nil {
			child = s.Items.Value
		}
		b.WriteString("[\n")
		for i, e := range v {
			b.WriteString(indent + "  ")
			writeJSON(b, e, child, indent+"  ")
			if i < len(v)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(indent + "]")
	default:
		b.WriteString(jsonText(v))
	}
}

var inlineCode = regexp.MustCompile("`([^`]+)`")

// prose renders the small subset of Markdown the document uses: paragraphs separated by
// blank lines, "- " bullet lists and `code`. Everything is escaped first.
func prose(s string) template.HTML {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	var b strings.Builder
	inList := false
	para := []string{}
	flush := func() {
		if len(para) > 0 {
			b.WriteString("<p>" + strings.Join(para, " ") + "</p>")
			para = para[:0]
		}
	}
	for _, raw := range strings.Split(s, "\n") {
		l := strings.TrimSpace(raw)
		text := inlineCode.ReplaceAllString(html.EscapeString(strings.TrimPrefix(l, "- ")), "<code>$1</code>")
		switch {
		case l == "":
			flush()
			if inList {
				b.WriteString("</ul>")
				inList = false
			}
		case strings.HasPrefix(l, "- "):
			flush()
			if !inList {
				b.WriteString("<ul>")
				inList = true
			}
			b.WriteString("<li>" + text + "</li>")
		default:
			if inList {
				b.WriteString("</ul>")
				inList = false
			}
			para = append(para, text)
		}
	}
	flush()
	if inList {
		b.WriteString("</ul>")
	}
	return template.HTML(b.String())
}

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

func slug(s string) string {
	return strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(s), "-"), "-")
}

// line returns the first known source line among origins, or 0.
func line(origins ...*openapi3.Origin) int {
	for _, o := range origins {
		if o != nil && o.Key != nil {
			return o.Key.Line
		}
	}
	return 0
}

// sortedKeys returns m's keys ordered by pos (document order), then by name.
func sortedKeys[V any](m map[string]V, pos func(V) int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if pos != nil {
			pi, pj := pos(m[keys[i]]), pos(m[keys[j]])
			if pi != pj {
				return pi < pj
			}
		}
		return keys[i] < keys[j]
	})
	return keys
}
