package index

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DB is the trace index in PostgreSQL, backed by a connection pool. It is
// safe for concurrent use. Every method that fails because the server cannot
// be reached, is shutting down or the pool could not hand out a connection in
// time returns an error wrapping traces.ErrUnavailable (and the pgx error).
type DB struct {
	pool *pgxpool.Pool

	// claims holds GC's canvas claims (session advisory locks, one
	// connection each for a whole canvas). It is a pool of its own so that
	// claims can never take every connection of pool while their own
	// queries wait for one.
	claimsOnce sync.Once
	claims     *pgxpool.Pool
	claimsErr  error
}

// claimConns bounds the GC claims held at once (ttl's Canvases default is 4).
const claimConns = 8

// claimPool opens the claims pool on first use, from pool's configuration.
func (db *DB) claimPool(ctx context.Context) (*pgxpool.Pool, error) {
	db.claimsOnce.Do(func() {
		cfg := db.pool.Config()
		cfg.MaxConns, cfg.MinConns = claimConns, 0
		db.claims, db.claimsErr = pgxpool.NewWithConfig(ctx, cfg)
	})
	return db.claims, db.claimsErr
}

// StatementTimeout bounds every statement of a DB opened by Open, unless
// the URL sets statement_timeout itself.
const StatementTimeout = time.Minute

// Options tunes Open. The zero value is usable.
type Options struct {
	// MaxConns caps the pool; 0 means pgx's default (max(4, GOMAXPROCS)).
	MaxConns int32
	// ConnectTimeout bounds each new connection; 0 means 5s. A connect_timeout
	// in the URL wins.
	ConnectTimeout time.Duration
}

// Open connects a pool to the database at url (a postgres:// URL or a
// key=value DSN) and pings it once, so a bad URL or an unreachable server is
// reported here. Its sessions run with jit off unless the URL sets jit. It does not apply the schema (schema.Apply does). A failed
// ping returns an error wrapping traces.ErrUnavailable. The caller closes the
// DB with Close.
func Open(ctx context.Context, url string, o Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open index: parse url: %w", err) // never echo the URL: it may hold a password
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	// Bounded statements are part of the keeper-safety reasoning (see
	// FreshWindow and DB.SetRenewAfter): no index write may run for minutes.
	if _, set := cfg.ConnConfig.RuntimeParams["statement_timeout"]; !set {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(StatementTimeout.Milliseconds())
	}
	// Every index query is a handful of index probes: JIT compilation,
	// which PostgreSQL starts from an estimated cost (a batch list of
	// thousands of rows reaches it), costs hundreds of milliseconds that
	// such a query never wins back.
	if _, set := cfg.ConnConfig.RuntimeParams["jit"]; !set {
		cfg.ConnConfig.RuntimeParams["jit"] = "off"
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
		if o.ConnectTimeout > 0 {
			cfg.ConnConfig.ConnectTimeout = o.ConnectTimeout
		}
	}
	return openConfig(ctx, cfg)
}

// queryTracer, when set (by this package's tests, before any Open), sees
// every statement the DB sends: the test that holds the queries to "lead
// with canvas_id" records them with it.
var queryTracer pgx.QueryTracer

func openConfig(ctx context.Context, cfg *pgxpool.Config) (*DB, error) {
	if queryTracer != nil {
		cfg.ConnConfig.Tracer = queryTracer
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open index: %w", err)
	}
	db := &DB{pool: pool}
	if err := db.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open index: %w", err)
	}
	return db, nil
}

// Close closes every connection of the pool, waiting for those in use to be
// released. The DB must not be used afterwards.
func (db *DB) Close() {
	db.pool.Close()
	if db.claims != nil {
		db.claims.Close()
	}
}

// Ping checks that a connection can be acquired and the server answers. The
// error wraps traces.ErrUnavailable when it cannot.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping index: %w", translate(err))
	}
	return nil
}
