package client

import (
	"strconv"

	"github.com/tracegw/tracegw/client/internal/wire"
)

// Decoders of the list answers (Recent, RecentMany), written for speed:
// the editor asks for hundreds of toplevels at once.

// decodeFields decodes a response that is one map. For each key in fields,
// its function reads the value (exactly that value); other keys are
// skipped; a key may appear once. An empty body is an empty map.
func decodeFields(body []byte, fields map[string]func(r *wire.Reader, field string) error) error {
	if len(body) == 0 {
		return nil
	}
	r := wire.NewReader(body, maxDepth)
	seen := make(map[string]bool, len(fields))
	n, err := r.MapHeader("body")
	if err != nil {
		return err
	}
	for range n {
		k, err := r.String("body", 0)
		if err != nil {
			return err
		}
		fn := fields[k]
		if fn == nil {
			if err := r.Skip(keyField("body", []byte(k))); err != nil {
				return err
			}
			continue
		}
		if seen[k] {
			return invalid(k, "duplicate key")
		}
		seen[k] = true
		// Find where the value ends first, so a function that reads too
		// little or too much is caught here.
		start := r.Offset()
		if err := r.Skip(keyField("body", []byte(k))); err != nil {
			return err
		}
		end := r.Offset()
		r.Rewind(start)
		if err := fn(r, k); err != nil {
			return err
		}
		if r.Offset() != end {
			return invalid(k, "has an unexpected form")
		}
	}
	if r.Remaining() != 0 {
		return invalid("body", "trailing data after the document")
	}
	return nil
}

// readSummaries reads a list of trace summaries, maps {traceID, timestamp,
// rootTLID, held, keptBecause, latestFor, expiresAfter}; unknown keys are
// skipped. The slice is never nil. field
// names the list in errors; element and key names are only built for an
// error, since the editor's batches hold thousands of items.
func readSummaries(r *wire.Reader, field func() string) ([]Summary, error) {
	n, err := r.ArrayHeader("")
	if err != nil {
		return nil, withPrefix(err, field())
	}
	out := make([]Summary, n)
	for i := range out {
		if err := readSummary(r, &out[i]); err != nil {
			return nil, withPrefix(err, elem(field(), i))
		}
	}
	return out, nil
}

// readSummary reads one list item; errors name fields relative to it
// (".traceID", or "" for the item itself).
func readSummary(r *wire.Reader, s *Summary) error {
	s.ID = nilTraceID // as the gateway's own decoder leaves an absent ID
	m, err := r.MapHeader("")
	if err != nil {
		return err
	}
	for range m {
		key, err := r.StringBytes("")
		if err != nil {
			return err
		}
		switch string(key) {
		case "traceID":
			var id string
			if id, err = r.String(".traceID", 36); err == nil {
				// A parsed ID is in canonical form: its text is id.
				_, err = wire.ParseV7(".traceID", id)
				s.ID = TraceID(id)
			}
		case "timestamp":
			s.Timestamp, err = readTimestamp(r, ".timestamp")
		case "rootTLID":
			s.RootTLID, err = readTLID(r, ".rootTLID")
		case "held":
			s.Held, err = r.Bool(".held")
		case "keptBecause":
			s.Kept.Because, err = readKeptBecause(r)
		case "latestFor":
			s.Kept.LatestFor, err = readTLIDs(r, ".latestFor")
		case "expiresAfter":
			if !r.Nil() {
				s.Kept.ExpiresAfter, err = readTimestamp(r, ".expiresAfter")
			}
		default:
			err = r.Skip("." + string(key))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// decodeTraceList reads a toplevel's list, {"traces": [...]}.
func decodeTraceList(body []byte) ([]Summary, error) {
	list := []Summary{}
	err := decodeFields(body, map[string]func(*wire.Reader, string) error{
		"traces": func(r *wire.Reader, f string) (err error) {
			list, err = readSummaries(r, func() string { return f })
			return err
		},
	})
	return list, err
}

// decodeToplevels reads the batch answer, {"toplevels": {"<tlid>": [...]}}.
func decodeToplevels(body []byte, into map[TLID][]Summary) error {
	return decodeFields(body, map[string]func(*wire.Reader, string) error{
		"toplevels": func(r *wire.Reader, f string) error {
			n, err := r.MapHeader(f)
			if err != nil {
				return err
			}
			for range n {
				tlid, err := readTLID(r, f)
				if err != nil {
					return err
				}
				into[tlid], err = readSummaries(r, func() string { return joinField(f, strconv.FormatUint(uint64(tlid), 10)) })
				if err != nil {
					return err
				}
			}
			return nil
		},
	})
}

// readKeptBecause reads a keptBecause list; words it does not know are kept
// as they are (a later gateway may add some).
func readKeptBecause(r *wire.Reader) ([]string, error) {
	n, err := r.ArrayHeader(".keptBecause")
	if err != nil {
		return nil, err
	}
	out := make([]string, n)
	for i := range out {
		if out[i], err = r.String(elem(".keptBecause", i), 64); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decodeSearch reads a search page, {"traces": [...], "nextCursor": "…"}.
func decodeSearch(body []byte) (SearchPage, error) {
	p := SearchPage{Traces: []Summary{}}
	err := decodeFields(body, map[string]func(*wire.Reader, string) error{
		"traces": func(r *wire.Reader, f string) (err error) {
			p.Traces, err = readSummaries(r, func() string { return f })
			return err
		},
		"nextCursor": func(r *wire.Reader, f string) (err error) {
			p.NextCursor, err = r.String(f, 256)
			return err
		},
	})
	return p, err
}
