package index

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tracegw/tracegw/internal/traces"
)

// translate wraps err with the traces sentinel it stands for, keeping err in
// the chain: no row is ErrNotFound, a unique violation ErrConflict, and
// anything that says the server cannot be reached or is going away
// ErrUnavailable. Other errors (bugs, constraint violations) pass unchanged.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if sentinel := classify(err); sentinel != nil {
		return fmt.Errorf("%w: %w", sentinel, err)
	}
	return err
}

func classify(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return traces.ErrNotFound
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505": // unique_violation
			return traces.ErrConflict
		case pe.Code[:2] == "08", // connection exception
			pe.Code[:2] == "53", // insufficient resources (too many connections, disk full)
			pe.Code == "57P01",  // admin_shutdown
			pe.Code == "57P02",  // crash_shutdown
			pe.Code == "57P03",  // cannot_connect_now (starting up, shutting down)
			pe.Code == "40001",  // serialization_failure: retry later
			pe.Code == "40P01":  // deadlock_detected: retry later
			return traces.ErrUnavailable
		}
		return nil
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce),
		errors.As(err, &ne),
		errors.Is(err, context.DeadlineExceeded), // pool acquire or query timed out
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE),
		pgconn.SafeToRetry(err),
		pgconn.Timeout(err):
		return traces.ErrUnavailable
	}
	return nil
}

// retryDeadlock runs f, a whole transaction, again when PostgreSQL chose it
// as the victim of a lock cycle (40P01: nothing of it was committed), at
// most three times in all. The writers of toplevels rows take their locks
// in tlid order (lockToplevelsSQL), so a cycle needs rows that did not exist
// yet, inserted by two writers at once: rare, and never worth a 503.
func retryDeadlock(f func() error) error {
	for attempt := 1; ; attempt++ {
		err := f()
		var pe *pgconn.PgError
		if err == nil || attempt == 3 || !errors.As(err, &pe) || pe.Code != "40P01" {
			return err
		}
	}
}

// sendBatch sends the batch build makes in one round trip (one implicit
// transaction), retried as retryDeadlock says. Each attempt builds its own
// batch: pgx records on a sent batch's queries the statements prepared on
// the connection that ran it, and a retry may get another connection.
func (db *DB) sendBatch(ctx context.Context, build func() *pgx.Batch) error {
	return retryDeadlock(func() error { return db.pool.SendBatch(ctx, build()).Close() })
}
