package emulator

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// conds are the generation and metageneration preconditions of a request.
// GCS checks them before holds, so a held object with a stale precondition
// answers 412, not 403.
type conds struct {
	genMatch, genNotMatch, metaMatch, metaNotMatch *int64
}

var condParams = []string{"ifGenerationMatch", "ifGenerationNotMatch", "ifMetagenerationMatch", "ifMetagenerationNotMatch"}

// requestConds reads preconditions from the query, or from the XML API's
// x-goog-if-* headers (signed URLs).
func requestConds(r *http.Request) (conds, error) {
	q := r.URL.Query()
	for hdr, p := range map[string]string{
		"X-Goog-If-Generation-Match":     "ifGenerationMatch",
		"X-Goog-If-Metageneration-Match": "ifMetagenerationMatch",
	} {
		if v := r.Header.Get(hdr); v != "" && q.Get(p) == "" {
			q.Set(p, v)
		}
	}
	return parseConds(q)
}

func parseConds(q url.Values) (conds, error) {
	var c conds
	ptrs := []**int64{&c.genMatch, &c.genNotMatch, &c.metaMatch, &c.metaNotMatch}
	for i, p := range condParams {
		s := q.Get(p)
		if s == "" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return conds{}, fmt.Errorf("invalid %s %q", p, s)
		}
		*ptrs[i] = &n
	}
	return c, nil
}

func (c conds) empty() bool {
	return c.genMatch == nil && c.genNotMatch == nil && c.metaMatch == nil && c.metaNotMatch == nil
}

// errCondNotMet is GCS's 412 message.
var errCondNotMet = errors.New("At least one of the pre-conditions you specified did not hold.")

// check evaluates the preconditions against the live object; a missing
// object has generation 0 and fails any metageneration match.
func (c conds) check(exists bool, gen, metagen int64) error {
	if !exists {
		gen, metagen = 0, 0
	}
	switch {
	case c.genMatch != nil && *c.genMatch != gen:
		return fmt.Errorf("%w (ifGenerationMatch=%d, generation=%d)", errCondNotMet, *c.genMatch, gen)
	case c.genNotMatch != nil && *c.genNotMatch == gen:
		return fmt.Errorf("%w (ifGenerationNotMatch=%d, generation=%d)", errCondNotMet, *c.genNotMatch, gen)
	case c.metaMatch != nil && (!exists || *c.metaMatch != metagen):
		return fmt.Errorf("%w (ifMetagenerationMatch=%d, metageneration=%d)", errCondNotMet, *c.metaMatch, metagen)
	case c.metaNotMatch != nil && exists && *c.metaNotMatch == metagen:
		return fmt.Errorf("%w (ifMetagenerationNotMatch=%d, metageneration=%d)", errCondNotMet, *c.metaNotMatch, metagen)
	}
	return nil
}

// holdMessage is GCS's 403 text for a held object, or "" if v is not held.
func holdMessage(v view) string {
	kind := ""
	switch {
	case v.st.TemporaryHold:
		kind = "Temporary"
	case v.st.EventBasedHold:
		kind = "Event-Based"
	default:
		return ""
	}
	return fmt.Sprintf("Object '%s/%s' is under active %s hold and cannot be deleted, overwritten or archived until hold is removed.",
		v.base.Bucket, v.base.Name, kind)
}
