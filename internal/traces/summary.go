package traces

// The wire form of trace lists (the API's list items), written and read by
// hand: the editor asks for hundreds of toplevels at once, and reflection
// over thousands of items cost more than the index query.

const (
	mpSumTraceID      = "\xa7traceID"
	mpSumTimestamp    = "\xa9timestamp"
	mpSumRootTLID     = "\xa8rootTLID"
	mpSumHeld         = "\xa4held"
	mpSumKeptBecause  = "\xabkeptBecause"
	mpSumLatestFor    = "\xa9latestFor"
	mpSumExpiresAfter = "\xacexpiresAfter"
)

// AppendSummariesMsgpack appends list as a msgpack array of maps
// {traceID: string, timestamp: timestamp extension, rootTLID: uint, held:
// bool, keptBecause: [string], latestFor: [uint], expiresAfter: timestamp
// extension or nil}.
func AppendSummariesMsgpack(dst []byte, list []Summary) []byte {
	dst = appendArrayHeader(dst, len(list))
	for _, x := range list {
		dst = appendMapHeader(dst, 7)
		dst = append(dst, mpSumTraceID...)
		dst = appendStringHeader(dst, 36)
		dst = UUID(x.ID).appendText(dst)
		dst = append(dst, mpSumTimestamp...)
		dst = appendTime(dst, x.Timestamp)
		dst = append(dst, mpSumRootTLID...)
		dst = appendUint(dst, uint64(x.RootTLID))
		dst = append(dst, mpSumHeld...)
		dst = appendBool(dst, x.Held)
		dst = append(dst, mpSumKeptBecause...)
		because := x.Kept.KeptBecause(x.Held)
		dst = appendArrayHeader(dst, len(because))
		for _, b := range because {
			dst = appendString(dst, b)
		}
		dst = append(dst, mpSumLatestFor...)
		dst = appendArrayHeader(dst, len(x.Kept.LatestFor))
		for _, t := range x.Kept.LatestFor {
			dst = appendUint(dst, uint64(t))
		}
		dst = append(dst, mpSumExpiresAfter...)
		if x.Kept.ExpiresAfter.IsZero() {
			dst = append(dst, 0xc0)
		} else {
			dst = appendTime(dst, x.Kept.ExpiresAfter)
		}
	}
	return dst
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 0xc3)
	}
	return append(dst, 0xc2)
}

// maxKeptWord bounds a keptBecause word; words this reader does not know
// are kept out of Kept (a later server may add some).
const maxKeptWord = 64

// readKeptBecause reads a keptBecause list into k (Recent); latest and held
// are carried by latestFor and held.
func (r *Reader) readKeptBecause(field string, k *Kept) error {
	n, err := r.ArrayHeader(field)
	if err != nil {
		return err
	}
	for i := range n {
		w, err := r.String(elem(field, i), maxKeptWord)
		if err != nil {
			return err
		}
		if w == KeptRecent {
			k.Recent = true
		}
	}
	return nil
}

// Summaries reads a list written by AppendSummariesMsgpack (unknown keys
// are skipped). Errors are *FieldErrors naming field.
func (r *Reader) Summaries(field string) ([]Summary, error) {
	n, err := r.ArrayHeader(field)
	if err != nil {
		return nil, err
	}
	out := make([]Summary, n)
	for i := range out {
		f := elem(field, i)
		m, err := r.MapHeader(f)
		if err != nil {
			return nil, err
		}
		for range m {
			key, err := r.StringBytes(f)
			if err != nil {
				return nil, err
			}
			kf := joinField(f, string(key))
			switch string(key) {
			case "traceID":
				s, err := r.String(kf, 36)
				if err == nil {
					out[i].ID, err = parseTraceIDField(kf, s)
				}
				if err != nil {
					return nil, err
				}
			case "timestamp":
				if out[i].Timestamp, err = r.Timestamp(kf); err != nil {
					return nil, err
				}
			case "rootTLID":
				if out[i].RootTLID, err = r.TLID(kf); err != nil {
					return nil, err
				}
			case "held":
				if out[i].Held, err = r.Bool(kf); err != nil {
					return nil, err
				}
			case "keptBecause":
				if err := r.readKeptBecause(kf, &out[i].Kept); err != nil {
					return nil, err
				}
			case "latestFor":
				if out[i].Kept.LatestFor, err = r.TLIDs(kf, DefaultLimits.MaxTLIDs); err != nil {
					return nil, err
				}
			case "expiresAfter":
				if r.Nil() {
					continue
				}
				if out[i].Kept.ExpiresAfter, err = r.Timestamp(kf); err != nil {
					return nil, err
				}
			default:
				if err := r.Skip(kf); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

// AppendTraceListMsgpack appends a toplevel's list response,
// {"traces": [...]}.
func AppendTraceListMsgpack(dst []byte, list []Summary) []byte {
	dst = appendMapHeader(dst, 1)
	dst = appendString(dst, "traces")
	return AppendSummariesMsgpack(dst, list)
}

// AppendSearchMsgpack appends a search page, {"traces": [...],
// "nextCursor": "…"} (nextCursor only when there is a next page).
func AppendSearchMsgpack(dst []byte, list []Summary, nextCursor string) []byte {
	if nextCursor == "" {
		return AppendTraceListMsgpack(dst, list)
	}
	dst = appendMapHeader(dst, 2)
	dst = appendString(dst, "traces")
	dst = AppendSummariesMsgpack(dst, list)
	dst = appendString(dst, "nextCursor")
	return appendString(dst, nextCursor)
}

// DecodeSearch reads AppendSearchMsgpack's output. Keys it does not know
// are skipped.
func DecodeSearch(body []byte, lim Limits) (list []Summary, nextCursor string, err error) {
	lim.SkipUnknown, lim.stored = true, true // an answer: a later server may add keys; text is not ours to check
	err = DecodeFields(body, false, lim, map[string]func(*Reader, string) error{
		"traces":     func(r *Reader, f string) (err error) { list, err = r.Summaries(f); return err },
		"nextCursor": func(r *Reader, f string) (err error) { nextCursor, err = r.String(f, 64); return err },
	})
	return list, nextCursor, err
}

// AppendToplevelsMsgpack appends the batch response,
// {"toplevels": {"<tlid>": [...], ...}}, tlids as decimal-string keys.
func AppendToplevelsMsgpack(dst []byte, m map[TLID][]Summary) []byte {
	dst = appendMapHeader(dst, 1)
	dst = appendString(dst, "toplevels")
	dst = appendMapHeader(dst, len(m))
	for tlid, list := range m {
		dst = appendString(dst, tlid.String())
		dst = AppendSummariesMsgpack(dst, list)
	}
	return dst
}

// DecodeTraceList reads AppendTraceListMsgpack's output. Keys it does not
// know are skipped: a later server may add some.
func DecodeTraceList(body []byte, lim Limits) ([]Summary, error) {
	lim.SkipUnknown, lim.stored = true, true // an answer: a later server may add keys; text is not ours to check
	var list []Summary
	err := DecodeFields(body, false, lim, map[string]func(*Reader, string) error{
		"traces": func(r *Reader, f string) (err error) { list, err = r.Summaries(f); return err },
	})
	return list, err
}

// DecodeToplevels reads AppendToplevelsMsgpack's output. Keys it does not
// know are skipped: a later server may add some.
func DecodeToplevels(body []byte, lim Limits) (map[TLID][]Summary, error) {
	lim.SkipUnknown, lim.stored = true, true // an answer: a later server may add keys; text is not ours to check
	out := map[TLID][]Summary{}
	err := DecodeFields(body, false, lim, map[string]func(*Reader, string) error{
		"toplevels": func(r *Reader, f string) error {
			n, err := r.MapHeader(f)
			if err != nil {
				return err
			}
			for range n {
				tlid, err := r.TLID(f)
				if err != nil {
					return err
				}
				if out[tlid], err = r.Summaries(joinField(f, tlid.String())); err != nil {
					return err
				}
			}
			return nil
		},
	})
	return out, err
}
