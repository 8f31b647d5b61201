package httpapi_test

import (
	"errors"

	"github.com/tracegw/tracegw/internal/traces"
)

func errorsIsNotFound(err error) bool { return errors.Is(err, traces.ErrNotFound) }
