package client

import (
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tracegw/tracegw/client/internal/wire"
)

// The byte-for-byte agreement with the gateway's own codec is tested in
// the gateway's module (internal/clientcompat); these tests need nothing
// but this module.

func sample() *Trace {
	return &Trace{
		ID:        NewTraceID(time.Date(2026, 11, 22, 3, 48, 1, 123_000_000, time.UTC)),
		RootTLID:  1234,
		TLIDs:     []TLID{5678, 1234, 5678, 1 << 40},
		Timestamp: time.Date(2026, 11, 22, 3, 48, 1, 123_456_789, time.UTC),
		Input:     []InputVar{{Name: "request", Value: MustValue(map[string]any{"body": "…"})}, {Name: "event"}},
		FunctionResults: []FunctionResult{
			{TLID: 5678, ExprID: 42, FnName: "HttpClient.get", HashVersion: -3, ArgHash: "a1b2", Value: MustValue([]any{"ok", 200})},
			{TLID: 9, ExprID: 1 << 63, FnName: "f"},
		},
	}
}

func TestTraceRoundTrip(t *testing.T) {
	in := sample()
	body, err := EncodeTrace(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeTrace(body)
	if err != nil {
		t.Fatalf("decodeTrace: %v", err)
	}
	want := *in
	want.TLIDs = []TLID{5678, 1234, 1 << 40}                                    // deduplicated
	want.Timestamp = in.Timestamp.Truncate(time.Millisecond)                    // as the gateway keeps it
	want.Input = []InputVar{in.Input[0], {Name: "event", Value: Value{0xc0}}}   // an empty value is nil
	want.FunctionResults = append([]FunctionResult(nil), in.FunctionResults...) //
	want.FunctionResults[1].Value = Value{0xc0}                                 //
	if !reflect.DeepEqual(got, &want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, &want)
	}
	var v map[string]any
	if err := got.Input[0].Value.Decode(&v); err != nil || v["body"] != "…" {
		t.Errorf("input value = %v, %v", v, err)
	}

	// Without ID and timestamp: both omitted, the root added to TLIDs.
	bare := &Trace{RootTLID: 7}
	body, _ = EncodeTrace(bare)
	got, err = decodeTrace(body)
	want = Trace{ID: "00000000-0000-0000-0000-000000000000", RootTLID: 7, TLIDs: []TLID{7}, Input: []InputVar{}, FunctionResults: []FunctionResult{}}
	if err != nil || !reflect.DeepEqual(got, &want) {
		t.Errorf("bare trace = %+v, %v; want %+v", got, err, &want)
	}

	if _, err := EncodeTrace(&Trace{ID: "7d3f5a1c-0000-4000-8000-00000000000a"}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "version-7") {
		t.Errorf("EncodeTrace with a version-4 ID = %v, want ErrInvalid naming version 7", err)
	}
}

func TestDecodeNamesTheBadField(t *testing.T) {
	doc := func(kv ...string) []byte {
		b := wire.AppendMapHeader(nil, len(kv)/2)
		for i := 0; i < len(kv); i += 2 {
			b = append(wire.AppendString(b, kv[i]), kv[i+1]...)
		}
		return b
	}
	u := func(v uint64) string { return string(wire.AppendUint(nil, v)) }
	for _, tc := range []struct {
		name string
		body []byte
		want string
	}{
		{"empty", nil, "body: empty"},
		{"not a map", []byte{0x90}, "body: must be a map, not array"},
		{"no root", doc("tlids", "\x90"), "rootTLID: required"},
		{"duplicate", doc("rootTLID", u(1), "rootTLID", u(2)), "rootTLID: duplicate key"},
		{"bad tlid", doc("rootTLID", u(1), "tlids", "\x92\x01\xa2x1"), "tlids[1]: must be an unsigned 64-bit integer in decimal"},
		{"bad pair", doc("rootTLID", u(1), "input", "\x91\x91\xa1a"), "input[0]: must be a [name, value] pair, not 1 elements"},
		{"result without name", doc("rootTLID", u(1), "functionResults", "\x91\x83\xa4tlid\x01\xa6exprID\x02\xa5value\xc0"), "functionResults[0].fnName: required"},
		{"trailing", append(doc("rootTLID", u(1)), 0xc0), "body: trailing data after the document"},
		{"old timestamp", doc("rootTLID", u(1), "timestamp", "\xb41969-12-31T23:59:59Z"), "timestamp: must be between 1970 and 9999"},
	} {
		_, err := decodeTrace(tc.body)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: err = %v, want %s", tc.name, err, tc.want)
		}
	}
}

func TestDecodeLists(t *testing.T) {
	ts := time.Date(2026, 11, 22, 3, 48, 1, 0, time.UTC)
	id := NewTraceID(ts)
	item := func(b []byte, held bool) []byte {
		b = wire.AppendMapHeader(b, 8)
		b = wire.AppendString(wire.AppendString(b, "traceID"), string(id))
		b = wire.AppendTime(wire.AppendString(b, "timestamp"), ts)
		b = wire.AppendUint(wire.AppendString(b, "rootTLID"), 12)
		b = append(wire.AppendString(b, "held"), map[bool]byte{false: 0xc2, true: 0xc3}[held])
		b = append(wire.AppendString(b, "keptBecause"), 0x91, 0xa6, 'l', 'a', 't', 'e', 's', 't')
		b = wire.AppendUint(append(wire.AppendString(b, "latestFor"), 0x91), 12)
		b = append(wire.AppendString(b, "expiresAfter"), 0xc0)
		return append(wire.AppendString(b, "colour"), 0xa3, 'r', 'e', 'd') // unknown: skipped
	}
	list := wire.AppendString(wire.AppendMapHeader(nil, 1), "traces")
	list = item(item(wire.AppendArrayHeader(list, 2), true), false)
	got, err := decodeTraceList(list)
	kept := Kept{Because: []string{"latest"}, LatestFor: []TLID{12}}
	want := []Summary{{ID: id, Timestamp: ts, RootTLID: 12, Held: true, Kept: kept}, {ID: id, Timestamp: ts, RootTLID: 12, Kept: kept}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("decodeTraceList = %+v, %v; want %+v", got, err, want)
	}
	if got, err := decodeTraceList(nil); err != nil || got == nil || len(got) != 0 {
		t.Errorf("decodeTraceList(empty body) = %#v, %v; want an empty list", got, err)
	}

	batch := wire.AppendString(wire.AppendMapHeader(nil, 1), "toplevels")
	batch = wire.AppendString(wire.AppendMapHeader(batch, 1), "18446744073709551615")
	batch = item(wire.AppendArrayHeader(batch, 1), false)
	m := map[TLID][]Summary{3: {}}
	if err := decodeToplevels(batch, m); err != nil {
		t.Fatal(err)
	}
	wantM := map[TLID][]Summary{3: {}, 1<<64 - 1: want[1:]}
	if !reflect.DeepEqual(m, wantM) {
		t.Errorf("decodeToplevels = %+v, want %+v", m, wantM)
	}
	bad := append(wire.AppendString(wire.AppendMapHeader(nil, 1), "toplevels"), 0x81, 0xa2, '0', '1', 0x90)
	if err := decodeToplevels(bad, map[TLID][]Summary{}); err == nil || err.Error() != "toplevels: must be an unsigned 64-bit integer in decimal" {
		t.Errorf("decodeToplevels with key 01 = %v", err)
	}
}

func TestTraceIDTime(t *testing.T) {
	at := time.Date(2026, 11, 22, 3, 48, 1, 123_000_000, time.UTC)
	if got := NewTraceID(at).Time(); !got.Equal(at) {
		t.Errorf("Time = %v, want %v", got, at)
	}
	if got := TraceID("7d3f5a1c-0000-4000-8000-00000000000a").Time(); !got.IsZero() {
		t.Errorf("Time of a version-4 UUID = %v, want zero", got)
	}
}

func BenchmarkDecodeToplevels(b *testing.B) {
	// The editor's batch: 200 toplevels, 10 traces each.
	ts := time.Date(2026, 11, 22, 3, 48, 1, 0, time.UTC)
	body := wire.AppendString(wire.AppendMapHeader(nil, 1), "toplevels")
	body = wire.AppendMapHeader(body, 200)
	for tl := range 200 {
		body = wire.AppendArrayHeader(wire.AppendString(body, strconv.Itoa(1000+tl)), 10)
		for range 10 {
			body = wire.AppendMapHeader(body, 4)
			body = wire.AppendString(wire.AppendString(body, "traceID"), string(NewTraceID(ts)))
			body = wire.AppendTime(wire.AppendString(body, "timestamp"), ts)
			body = wire.AppendUint(wire.AppendString(body, "rootTLID"), uint64(tl))
			body = append(wire.AppendString(body, "held"), 0xc2)
		}
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for range b.N {
		if err := decodeToplevels(body, make(map[TLID][]Summary, 200)); err != nil {
			b.Fatal(err)
		}
	}
}

func TestKeptHeaders(t *testing.T) {
	h := http.Header{}
	h.Set("X-Kept-Because", "latest, recent")
	h.Set("X-Latest-For", "3, 18446744073709551615")
	k, err := keptOf(h)
	if err != nil || !reflect.DeepEqual(k, Kept{Because: []string{"latest", "recent"}, LatestFor: []TLID{3, 1<<64 - 1}}) {
		t.Errorf("keptOf(latest) = %+v, %v", k, err)
	}
	h = http.Header{}
	h.Set("X-Kept-Because", "")
	h.Set("X-Expires-After", "2026-11-29T03:48:01.000Z")
	k, err = keptOf(h)
	if err != nil || len(k.Because) != 0 || k.Because == nil || !k.ExpiresAfter.Equal(time.Date(2026, 11, 29, 3, 48, 1, 0, time.UTC)) {
		t.Errorf("keptOf(expiring) = %+v, %v", k, err)
	}
	for _, bad := range []http.Header{{"X-Latest-For": {"x"}}, {"X-Expires-After": {"tomorrow"}}} {
		if _, err := keptOf(bad); err == nil {
			t.Errorf("keptOf(%v) accepted", bad)
		}
	}
}
