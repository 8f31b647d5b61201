package objstore

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"

	"github.com/tracegw/tracegw/internal/traces"
)

// translate maps a storage client error to the traces vocabulary, keeping
// the original in the chain. nil stays nil.
func translate(step string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, storage.ErrObjectNotExist) || errors.Is(err, storage.ErrBucketNotExist) {
		return errorf(step, traces.ErrNotFound, err)
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		switch {
		case ge.Code == 404:
			return errorf(step, traces.ErrNotFound, err)
		case ge.Code == 412:
			return errorf(step, traces.ErrPreconditionFailed, err)
		case ge.Code == 403 && isHold(ge):
			return errorf(step, traces.ErrHeld, err)
		case ge.Code == 408 || ge.Code == 429 || ge.Code >= 500:
			return errorf(step, traces.ErrUnavailable, err)
		}
		return errorf(step, errors.New("storage"), err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errorf(step, traces.ErrUnavailable, err)
	}
	var ne net.Error
	if errors.As(err, &ne) || isConnErr(err) {
		return errorf(step, traces.ErrUnavailable, err)
	}
	return err
}

func isConnErr(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// isHold recognises GCS's refusal of a held object: 403 with reason
// objectUnderActiveHold (documented) or, as observed, reason "forbidden" and
// a message naming the hold. There is no other signal to go by.
func isHold(ge *googleapi.Error) bool {
	for _, e := range ge.Errors {
		if e.Reason == "objectUnderActiveHold" {
			return true
		}
	}
	return strings.Contains(strings.ToLower(ge.Message), "hold")
}
