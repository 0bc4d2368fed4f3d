package platform

import (
	"errors"
	"net/http"
	"sync"

	"github.com/sbor-dev/sbor/api"
)

var (
	validatorOnce sync.Once
	validator     *api.Validator
	validatorErr  error
)

// checkContract validates an answer of the public API against the OpenAPI document, so the
// document cannot drift from what the services really answer. Routes outside the document
// (health, the documents themselves) are skipped.
func checkContract(method, path string, status int, header http.Header, body []byte) error {
	validatorOnce.Do(func() { validator, validatorErr = api.NewResponseValidator() })
	if validatorErr != nil {
		return validatorErr
	}
	err := validator.Validate(method, path, status, header, body)
	if errors.Is(err, api.ErrUnknownRoute) {
		return nil
	}
	return err
}
