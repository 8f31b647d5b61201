package emulator_test

import (
	"net/http"
	"testing"
	"time"

	"cloud.google.com/go/storage"

	"github.com/tracegw/tracegw/emulator"
)

// GCS's rule: customTime cannot be removed or made earlier; the same or a
// later value is accepted.
func TestCustomTimeOnlyMovesForward(t *testing.T) {
	t.Parallel()
	v := newEnv(t, emulator.Options{})
	base := v.secs()
	tests := []struct {
		name   string
		update time.Time
		want   int // 0 = accepted
		stored time.Time
	}{
		{"earlier", base.Add(-time.Second), 400, base},
		{"same", base, 0, base},
		{"later", base.Add(time.Hour), 0, base.Add(time.Hour)},
		{"much earlier", base.Add(-24 * time.Hour), 400, base},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := "ct/" + tc.name
			v.put(t, name, "x", func(w *storage.Writer) { w.CustomTime = base })
			a, err := v.obj(name).Update(t.Context(), storage.ObjectAttrsToUpdate{CustomTime: tc.update})
			if got := code(err); got != tc.want {
				t.Fatalf("update customTime to %s: got status %d (%v), want %d", tc.update, got, err, tc.want)
			}
			if tc.want == 400 {
				mustContain(t, err.Error(), "customTime can only move forward")
			} else if !a.CustomTime.Equal(tc.stored) {
				t.Errorf("returned customTime %s, want %s", a.CustomTime, tc.stored)
			}
			if got := v.attrs(t, name).CustomTime; !got.Equal(tc.stored) {
				t.Errorf("stored customTime %s, want %s", got, tc.stored)
			}
		})
	}
	t.Run("remove", func(t *testing.T) {
		v.put(t, "ct/remove", "x", func(w *storage.Writer) { w.CustomTime = base })
		status, body := v.do(t, http.MethodPatch, v.objectPath("ct/remove"), map[string]any{"customTime": nil})
		if status != 400 {
			t.Fatalf("PATCH customTime=null: got %d %s, want 400", status, body)
		}
		mustContain(t, string(body), "customTime cannot be removed")
	})
	t.Run("set later when none", func(t *testing.T) {
		v.put(t, "ct/none", "x", nil)
		if _, err := v.obj("ct/none").Update(t.Context(), storage.ObjectAttrsToUpdate{CustomTime: base}); err != nil {
			t.Fatalf("set first customTime: %v", err)
		}
	})
}

// In GCS, metageneration starts at 1 for each generation and grows on
// every metadata update; fake-gcs-server alone always reports 1.
func TestMetagenerationBumpsOnEachPatch(t *testing.T) {
	t.Parallel()
	v := newEnv(t, emulator.Options{})
	a := v.put(t, "m", "x", nil)
	if a.Metageneration != 1 {
		t.Fatalf("new object metageneration %d, want 1", a.Metageneration)
	}
	gen, created, updated := a.Generation, a.Created, a.Updated
	for want := int64(2); want <= 4; want++ {
		v.advance(t, time.Minute)
		got, err := v.obj("m").Update(t.Context(), storage.ObjectAttrsToUpdate{Metadata: map[string]string{"n": "v"}})
		if err != nil {
			t.Fatalf("update: %v", err)
		}
		if got.Metageneration != want || got.Generation != gen {
			t.Errorf("after update: generation %d metageneration %d, want %d %d", got.Generation, got.Metageneration, gen, want)
		}
		if !got.Updated.After(updated) || !got.Created.Equal(created) {
			t.Errorf("updated %s (was %s), created %s (was %s): want updated to grow, created fixed", got.Updated, updated, got.Created, created)
		}
		updated = got.Updated
	}
	if a := v.attrs(t, "m"); a.Metageneration != 4 || a.Metadata["n"] != "v" {
		t.Errorf("stored metageneration %d metadata %v, want 4 and n=v", a.Metageneration, a.Metadata)
	}
	b := v.put(t, "m", "y", nil)
	if b.Metageneration != 1 || b.Generation == gen {
		t.Errorf("overwrite: generation %d metageneration %d, want a new generation at 1", b.Generation, b.Metageneration)
	}
}

// As in GCS, a failed precondition (ifGenerationMatch,
// ifMetagenerationMatch) is 412 on update, overwrite and delete.
func TestPreconditions(t *testing.T) {
	t.Parallel()
	v := newEnv(t, emulator.Options{})
	ops := map[string]func(t *testing.T, o *storage.ObjectHandle) error{
		"update": func(t *testing.T, o *storage.ObjectHandle) error {
			_, err := o.Update(t.Context(), storage.ObjectAttrsToUpdate{ContentType: "text/x"})
			return err
		},
		"overwrite": func(t *testing.T, o *storage.ObjectHandle) error {
			_, err := v.tryPut(t, o, "new", nil)
			return err
		},
		"delete": func(t *testing.T, o *storage.ObjectHandle) error { return o.Delete(t.Context()) },
	}
	type condFn func(gen, meta int64) storage.Conditions
	conds := []struct {
		name string
		cond condFn
		want int
	}{
		{"generationMatch wrong", func(g, m int64) storage.Conditions { return storage.Conditions{GenerationMatch: g + 1} }, 412},
		{"generationMatch right", func(g, m int64) storage.Conditions { return storage.Conditions{GenerationMatch: g} }, 0},
		{"generationNotMatch current", func(g, m int64) storage.Conditions { return storage.Conditions{GenerationNotMatch: g} }, 412},
		{"doesNotExist", func(g, m int64) storage.Conditions { return storage.Conditions{DoesNotExist: true} }, 412},
		{"metagenerationMatch wrong", func(g, m int64) storage.Conditions {
			return storage.Conditions{GenerationMatch: g, MetagenerationMatch: m + 1}
		}, 412},
		{"metagenerationMatch right", func(g, m int64) storage.Conditions {
			return storage.Conditions{GenerationMatch: g, MetagenerationMatch: m}
		}, 0},
		{"metagenerationNotMatch current", func(g, m int64) storage.Conditions {
			return storage.Conditions{GenerationMatch: g, MetagenerationNotMatch: m}
		}, 412},
	}
	for opName, op := range ops {
		for _, c := range conds {
			if opName == "update" && c.name == "doesNotExist" {
				continue // the Go client refuses DoesNotExist on Update
			}
			t.Run(opName+"/"+c.name, func(t *testing.T) {
				name := "pre/" + opName + "/" + c.name
				v.put(t, name, "old", nil)
				a, err := v.obj(name).Update(t.Context(), storage.ObjectAttrsToUpdate{ContentType: "text/y"})
				if err != nil {
					t.Fatalf("bump metageneration: %v", err)
				}
				err = op(t, v.obj(name).If(c.cond(a.Generation, a.Metageneration)))
				if got := code(err); got != c.want {
					t.Fatalf("got status %d (%v), want %d", got, err, c.want)
				}
				after, err := v.obj(name).Attrs(t.Context())
				if c.want == 412 && (err != nil || after.Generation != a.Generation || after.Metageneration != a.Metageneration) {
					t.Errorf("412 must change nothing: attrs %+v, err %v", after, err)
				}
			})
		}
	}
}

// As in GCS, a held object refuses delete and overwrite with 403, a
// failing precondition is reported first (412 before 403), and metadata,
// customTime included, stays editable.
func TestHolds(t *testing.T) {
	t.Parallel()
	v := newEnv(t, emulator.Options{})
	holds := []struct {
		name    string
		set     func(w *storage.Writer)
		patch   storage.ObjectAttrsToUpdate
		release storage.ObjectAttrsToUpdate
		kind    string
	}{
		{"temporary", func(w *storage.Writer) { w.TemporaryHold = true },
			storage.ObjectAttrsToUpdate{TemporaryHold: true}, storage.ObjectAttrsToUpdate{TemporaryHold: false}, "Temporary"},
		{"eventBased", func(w *storage.Writer) { w.EventBasedHold = true },
			storage.ObjectAttrsToUpdate{EventBasedHold: true}, storage.ObjectAttrsToUpdate{EventBasedHold: false}, "Event-Based"},
	}
	for _, h := range holds {
		for _, via := range []string{"upload", "patch"} {
			t.Run(h.name+"/"+via, func(t *testing.T) {
				name := "held/" + h.name + "/" + via
				var a *storage.ObjectAttrs
				if via == "upload" {
					a = v.put(t, name, "x", h.set)
				} else {
					v.put(t, name, "x", nil)
					var err error
					if a, err = v.obj(name).Update(t.Context(), h.patch); err != nil {
						t.Fatalf("place hold: %v", err)
					}
				}
				if !a.TemporaryHold && !a.EventBasedHold {
					t.Fatalf("hold not returned: %+v", a)
				}
				err := v.obj(name).Delete(t.Context())
				if code(err) != 403 {
					t.Fatalf("delete held: got %v, want 403", err)
				}
				mustContain(t, err.Error(), "Object '"+v.Bucket+"/"+name+"' is under active "+h.kind+" hold and cannot be deleted, overwritten or archived until hold is removed.")
				if _, err := v.tryPut(t, v.obj(name), "y", nil); code(err) != 403 {
					t.Fatalf("overwrite held: got %v, want 403", err)
				}
				stale := v.obj(name).If(storage.Conditions{GenerationMatch: a.Generation + 1})
				if err := stale.Delete(t.Context()); code(err) != 412 {
					t.Fatalf("delete held with stale precondition: got %v, want 412 before 403", err)
				}
				if _, err := v.tryPut(t, stale, "y", nil); code(err) != 412 {
					t.Fatalf("overwrite held with stale precondition: got %v, want 412 before 403", err)
				}
				ct := v.secs().Add(time.Hour)
				u, err := v.obj(name).Update(t.Context(), storage.ObjectAttrsToUpdate{CustomTime: ct})
				if err != nil || !u.CustomTime.Equal(ct) {
					t.Fatalf("customTime on held object: %v, %v", u, err)
				}
				if _, err := v.obj(name).Update(t.Context(), h.release); err != nil {
					t.Fatalf("release: %v", err)
				}
				if err := v.obj(name).Delete(t.Context()); err != nil {
					t.Fatalf("delete after release: %v", err)
				}
			})
		}
	}
}
