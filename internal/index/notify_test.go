package index

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tracegw/tracegw/internal/traces"
)

func TestRemoveManyWithLayers(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	c := canvasID(1)
	a, b, newer := record(c, 1, 10), record(c, 2, 11), record(c, 3, 12)
	a.Layers, b.Layers = 3, 0
	put(t, db, a, b, newer)

	ds := []Deletion{
		{Canvas: c, ID: a.ID, Generation: a.Generation},
		{Canvas: c, ID: a.ID, Generation: a.Generation}, // duplicate: reported once
		{Canvas: c, ID: b.ID, Generation: b.Generation + 5},
		{Canvas: c, ID: newer.ID, Generation: newer.Generation - 1}, // rows describe a newer generation
		{Canvas: c, ID: traces.NewTraceID(base), Generation: 1},     // never indexed
	}
	got, err := db.RemoveManyWithLayers(t.Context(), ds)
	if err != nil {
		t.Fatalf("RemoveManyWithLayers: %v", err)
	}
	slices.SortFunc(got, func(x, y Removed) int { return bytes.Compare(x.ID[:], y.ID[:]) })
	want := []Removed{
		{Canvas: c, ID: a.ID, Generation: a.Generation, Layers: 3},
		{Canvas: c, ID: b.ID, Generation: b.Generation, Layers: 0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	if n := count(t, db, "SELECT count(*) FROM trace_tlids WHERE canvas_id = $1", [16]byte(c)); n != 1 {
		t.Errorf("trace_tlids rows left = %d, want 1 (the newer trace's)", n)
	}
	if _, err := db.Get(t.Context(), c, newer.ID); err != nil {
		t.Errorf("Get(newer) = %v, want its rows kept", err)
	}
	// A redelivered batch removes nothing more.
	got, err = db.RemoveManyWithLayers(t.Context(), ds)
	if err != nil || len(got) != 0 {
		t.Errorf("again: %v, %v; want nothing, nil", got, err)
	}
}

func TestTraceGenerationsAndCanvases(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	c1, c2, c3 := canvasID(1), canvasID(2), canvasID(3)
	var want []TraceGeneration
	for i := range 5 {
		r := record(c2, i, 7)
		put(t, db, r)
		want = append(want, TraceGeneration{ID: r.ID, Generation: r.Generation})
	}
	put(t, db, record(c1, 9, 1), record(c3, 9, 1))

	var got []TraceGeneration
	var after traces.TraceID
	for pages := 0; ; pages++ {
		page, err := db.TraceGenerations(t.Context(), c2, after, 2)
		if err != nil {
			t.Fatalf("TraceGenerations: %v", err)
		}
		if len(page) == 0 {
			if pages != 3 {
				t.Errorf("pages = %d, want 3", pages)
			}
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].ID
	}
	if diff := cmp.Diff(want, got); diff != "" { // IDs are time-ordered: insertion order
		t.Errorf("TraceGenerations (-want +got):\n%s", diff)
	}

	var canvases []traces.CanvasID
	var afterC traces.CanvasID
	for {
		page, err := db.Canvases(t.Context(), afterC, 2)
		if err != nil {
			t.Fatalf("Canvases: %v", err)
		}
		if len(page) == 0 {
			break
		}
		canvases = append(canvases, page...)
		afterC = page[len(page)-1]
	}
	if diff := cmp.Diff([]traces.CanvasID{c1, c2, c3}, canvases); diff != "" {
		t.Errorf("Canvases (-want +got):\n%s", diff)
	}

	if _, err := db.Canvases(t.Context(), afterC, 0); !errors.Is(err, traces.ErrInvalid) {
		t.Errorf("Canvases(limit 0) = %v, want ErrInvalid", err)
	}
	if _, err := db.TraceGenerations(t.Context(), c1, traces.TraceID{}, 0); !errors.Is(err, traces.ErrInvalid) {
		t.Errorf("TraceGenerations(limit 0) = %v, want ErrInvalid", err)
	}
}
