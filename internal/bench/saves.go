package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tracegw/tracegw/client"
	"github.com/tracegw/tracegw/internal/traces"
)

// Saves are spread over saveCanvases canvases and saveRoots handlers
// per canvas, each trace also touching one of 7 shared functions.
const (
	saveCanvases = 8
	saveRoots    = 200
)

// payload is a trace body of about one size: the input value the client
// sends, and the object the gateway would store for it (gzip of the msgpack
// document, as tracestore.Service does) for the raw and naive paths.
type payload struct {
	sizeKiB int
	value   client.Value
	result  client.Value
	stored  []byte
	sha     string
}

var words = strings.Fields("request body user id name email status ok error timeout items price total " +
	"GET POST /users /orders handler function result value true false null count index page limit offset")

// makePayload builds a trace of about sizeKiB KiB: realistic-looking text
// (words and numbers) that compresses about as much as real input does.
func makePayload(rng *rand.Rand, sizeKiB int) (payload, error) {
	var sb strings.Builder
	target := sizeKiB<<10 - 160
	for sb.Len() < target {
		if rng.IntN(4) == 0 {
			fmt.Fprintf(&sb, "%d ", rng.IntN(1_000_000))
		} else {
			sb.WriteString(words[rng.IntN(len(words))])
			sb.WriteByte(' ')
		}
	}
	text := sb.String()[:target]
	p := payload{sizeKiB: sizeKiB}
	var err error
	if p.value, err = client.EncodeValue(map[string]any{"body": text}); err != nil {
		return p, err
	}
	if p.result, err = client.EncodeValue([]any{"ok", 200}); err != nil {
		return p, err
	}
	doc, err := client.EncodeTrace(p.trace(0, traces.NewTraceID(time.Now()).String()))
	if err != nil {
		return p, err
	}
	sum := sha256.Sum256(doc)
	p.sha = hex.EncodeToString(sum[:])
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed) // the gateway's level
	if _, err := w.Write(doc); err != nil {
		return p, err
	}
	if err := w.Close(); err != nil {
		return p, err
	}
	p.stored = buf.Bytes()
	return p, nil
}

// trace is save number i.
func (p payload) trace(i int, id string) *client.Trace {
	root := client.TLID(1 + i%saveRoots)
	return &client.Trace{
		ID:       client.TraceID(id),
		RootTLID: root,
		TLIDs:    []client.TLID{root, client.TLID(1000 + i%7)},
		Input:    []client.InputVar{{Name: "request", Value: p.value}},
		FunctionResults: []client.FunctionResult{{
			TLID: root, ExprID: 1, FnName: "HttpClient.get", ArgHash: "a1b2", Value: p.result,
		}},
	}
}

// saveTargets are the three ways of storing a trace that the bench
// compares: through the gateway, straight to storage, and storage plus
// one INSERT per trace.
type saveTargets struct {
	cl       *client.Client
	bucket   *storage.BucketHandle
	naive    *pgxpool.Pool
	canvases []client.CanvasID
}

func (s *saveTargets) canvas(i int) client.CanvasID { return s.canvases[i%len(s.canvases)] }

func (s *saveTargets) gateway(p payload) func(ctx context.Context, i int) error {
	return func(ctx context.Context, i int) error {
		_, err := s.cl.Save(ctx, s.canvas(i), p.trace(i, ""))
		return err
	}
}

// raw uploads the stored bytes as the gateway's objstore does: one
// request, ChunkSize 0, create-only, with customTime and metadata.
func (s *saveTargets) raw(p payload) func(ctx context.Context, i int) error {
	return func(ctx context.Context, i int) error {
		_, _, err := s.upload(ctx, p, i)
		return err
	}
}

func (s *saveTargets) upload(ctx context.Context, p payload, i int) (string, traces.TraceID, error) {
	now := time.Now()
	id := traces.NewTraceID(now)
	key := string(s.canvas(i)) + "/traces/" + id.String()
	w := s.bucket.Object(key).If(storage.Conditions{DoesNotExist: true}).NewWriter(ctx)
	w.ChunkSize = 0
	w.ContentType = "application/msgpack"
	w.ContentEncoding = "gzip"
	w.CustomTime = now.UTC().Truncate(time.Second)
	w.Metadata = map[string]string{"tracegw-format": traces.FormatVersion, "tracegw-sha256": p.sha}
	if _, err := w.Write(p.stored); err != nil {
		_ = w.Close()
		return "", id, err
	}
	return key, id, w.Close()
}

// naiveTable is the original platform's shape: one row per trace, written
// with its own INSERT after the upload.
const naiveTable = `CREATE TABLE IF NOT EXISTS bench_naive (
  canvas_id uuid NOT NULL, trace_id uuid NOT NULL, root_tlid bigint NOT NULL,
  ts timestamptz NOT NULL, object text NOT NULL, PRIMARY KEY (canvas_id, trace_id))`

func (s *saveTargets) naiveSave(p payload) func(ctx context.Context, i int) error {
	return func(ctx context.Context, i int) error {
		key, id, err := s.upload(ctx, p, i)
		if err != nil {
			return err
		}
		c, err := traces.ParseCanvasID(string(s.canvas(i)))
		if err != nil {
			return err
		}
		_, err = s.naive.Exec(ctx, `INSERT INTO bench_naive (canvas_id, trace_id, root_tlid, ts, object) VALUES ($1, $2, $3, $4, $5)`,
			[16]byte(c), [16]byte(id), int64(1+i%saveRoots), id.Time(), key)
		return err
	}
}
