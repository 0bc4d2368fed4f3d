// Package api holds Sbor's public API contract: the OpenAPI 3.1 document of every route the
// gateway serves (openapi.yaml, embedded), a human-readable reference page rendered from it
// without any external asset, and a validator that checks a response against it.
//
// The document is written by hand and kept honest by tests: the contract test compares it
// with gateway.Routes, and the end-to-end suite validates every response it receives with
// NewResponseValidator.
package api

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/getkin/kin-openapi/openapi3"
)

// Document is the OpenAPI 3.1 document of the public API, as served at /api/openapi.yaml.
//
//go:embed openapi.yaml
var Document []byte

// Load parses Document, resolving every $ref. Each call returns a fresh copy, so callers may
// change what they get.
func Load() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(Document)
	if err != nil {
		return nil, fmt.Errorf("api: parse openapi.yaml: %w", err)
	}
	return doc, nil
}

// LoadValid parses Document and validates it against the OpenAPI specification, examples
// against their schemas included.
func LoadValid(ctx context.Context) (*openapi3.T, error) {
	doc, err := Load()
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(ctx, openapi3.EnableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("api: openapi.yaml is invalid: %w", err)
	}
	return doc, nil
}
