package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tracegw/tracegw/client"
	"github.com/tracegw/tracegw/internal/httpapi"
	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/schema"
)

// method says how the embedded stack is measured; the report prints it.
const method = "gateway = `tracegw serve` and emulator = `tracegw emulator` (filesystem backend), each a child process of the bench; " +
	"load generator (client package), raw and naive paths, GC and notify run in the bench process. " +
	"CPU = utime+stime from /proc/PID/stat over each gateway cell, per 1000 saves; peak RSS = VmHWM from /proc/PID/status, reset before each cell with clear_refs. " +
	"PostgreSQL is a private server on disk (fsync on)."

// benchSigningID is the access ID of the bench's upload signing key.
const benchSigningID = "tracegw-bench@localhost"

// remoteMethod is method for a gateway at Options.URL.
const remoteMethod = "gateway at --url; only its saves and reads are measured (no raw/naive baseline, CPU, RSS, GC or notify)"

// Run measures a gateway and returns the report, with the targets
// evaluated. Without o.URL it builds a private stack in a temporary
// directory (PostgreSQL, an emulator on disk and one on tmpfs, a gateway on
// each) and removes it when done; it talks only to loopback. When a step
// fails, or ctx ends, Run stops and returns what it measured so far with
// the error; an invalid o returns the zero Report.
func Run(ctx context.Context, o Options) (Report, error) {
	if err := o.Validate(); err != nil {
		return Report{}, err
	}
	b := &run{o: o, plan: fullPlan, out: o.Progress}
	if b.out == nil {
		b.out = io.Discard
	}
	r := Report{Mode: "full", Started: time.Now().UTC(), Method: method,
		Host: fmt.Sprintf("%s %s/%s, %d CPUs", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())}
	if o.Quick {
		b.plan, r.Mode = quickPlan, "quick"
	}
	b.r = &r
	var err error
	if o.URL != "" {
		r.Method = remoteMethod
		err = b.remote(ctx)
	} else {
		err = b.embedded(ctx)
	}
	r.Seconds = time.Since(r.Started).Seconds()
	r.Targets = targetRows(&r)
	return r, err
}

// run is one Run in progress.
type run struct {
	o    Options
	plan plan
	r    *Report
	out  io.Writer

	// The embedded stack's shared parts.
	tmp, dbURL, keyFile, token string
	uploadKey                  string // signs direct uploads; the emulators check with it
	naive                      *pgxpool.Pool
	gwURL                      string // the current stage's gateway
	gwPid                      int
}

func (b *run) log(format string, a ...any) { fmt.Fprintf(b.out, "bench: "+format+"\n", a...) }

// remote measures saves of a gateway someone else runs.
func (b *run) remote(ctx context.Context) error {
	cl := client.New(b.o.URL, b.o.Token)
	defer cl.Close()
	t := &saveTargets{cl: cl, canvases: newCanvases()}
	st := Stage{Storage: "remote", Dir: b.o.URL}
	rng := rand.New(rand.NewPCG(b.o.Seed, 9))
	for _, size := range saveSizes {
		p, err := makePayload(rng, size)
		if err != nil {
			return err
		}
		for _, conc := range saveConcs {
			b.log("saves %d KiB concurrency %d", size, conc)
			st.Cells = append(st.Cells, Cell{SizeKiB: size, Conc: conc, Gateway: runLoad(ctx, conc, b.plan.saves, t.gateway(p))})
		}
	}
	b.r.Stages = append(b.r.Stages, st)
	return ctx.Err()
}

func newCanvases() []client.CanvasID {
	out := make([]client.CanvasID, saveCanvases)
	for i := range out {
		out[i] = client.CanvasID(traces.NewTraceID(time.Now()).String())
	}
	return out
}

// embedded runs the whole comparison on a private stack.
func (b *run) embedded(ctx context.Context) (err error) {
	if b.tmp, err = privateTemp("", "tgwbench-"); err != nil {
		return err
	}
	defer os.RemoveAll(b.tmp)
	b.log("starting PostgreSQL in %s", b.tmp)
	dbURL, stopPG, err := b.o.Postgres(ctx, b.tmp)
	if err != nil {
		return err
	}
	defer func() {
		if serr := stopPG(); serr != nil {
			err = errors.Join(err, serr)
		}
	}()
	b.dbURL = dbURL
	if err := migrate(ctx, dbURL); err != nil {
		return err
	}
	b.uploadKey = filepath.Join(b.tmp, "upload-signing.pem")
	if _, err := objstore.LoadOrCreateSigningKey(b.uploadKey); err != nil {
		return err
	}
	b.keyFile = filepath.Join(b.tmp, "signing.key")
	key, err := httpapi.LoadOrCreateKey(b.keyFile)
	if err != nil {
		return err
	}
	if b.token, err = httpapi.Sign(key, httpapi.Claims{Role: httpapi.RoleAdmin, Subject: "tracegw-bench", IssuedAt: time.Now(), Expiry: time.Now().Add(24 * time.Hour)}); err != nil {
		return err
	}
	if b.naive, err = pgxpool.New(ctx, dbURL); err != nil {
		return err
	}
	defer b.naive.Close()
	if _, err := b.naive.Exec(ctx, naiveTable); err != nil {
		return err
	}

	b.log("seeding the index with COPY")
	t0 := time.Now()
	rows, dels, err := seedIndex(ctx, dbURL, b.plan.notifyMsgs+b.plan.emuMsgs+b.plan.applyN)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	seed := seeded{rows: rows, secs: time.Since(t0).Seconds()}
	b.log("seeded %d rows in %.1fs", rows, seed.secs)

	shm, err := privateTemp("/dev/shm", "tgwbench-")
	if err != nil {
		return fmt.Errorf("tmpfs: %w", err)
	}
	defer os.RemoveAll(shm)
	// GC runs on the default (disk) storage, over what the saves left;
	// the reads on the last one.
	if err := b.stage(ctx, "disk", filepath.Join(b.tmp, "gcs-disk"), b.measureGC); err != nil {
		return fmt.Errorf("stage disk: %w", err)
	}
	if err := b.stage(ctx, "tmpfs", shm, func(ctx context.Context, cl *client.Client, _ string) {
		b.measureReads(ctx, cl, seed)
		b.r.Large = b.measureLarge(ctx, b.gwURL, b.gwPid)
	}); err != nil {
		return fmt.Errorf("stage tmpfs: %w", err)
	}
	b.log("notify")
	q := min(b.plan.notifyMsgs, len(dels))
	e := min(q+b.plan.emuMsgs, len(dels))
	nr := measureNotify(ctx, dbURL, "traces", b.tmp, dels[:q], dels[q:e], dels[e:], b.plan.notifyWindow)
	b.r.Notify = &nr
	return ctx.Err()
}

// seeded is what seeding the index took.
type seeded struct {
	rows int
	secs float64
}

// measureGC fills the report's GC figures.
func (b *run) measureGC(ctx context.Context, cl *client.Client, emuURL string) {
	b.log("GC")
	gr := GCResults{}
	rig, err := newGCRig(ctx, emuURL, "traces", b.dbURL)
	if err != nil {
		gr.Err = err.Error()
	} else {
		p, _ := makePayload(rand.New(rand.NewPCG(b.o.Seed, 16)), 16)
		t := &saveTargets{cl: cl, canvases: newCanvases()}
		gr = measureGC(ctx, rig, t.gateway(p), b.plan.gcSaves)
		rig.close()
	}
	b.r.GC = &gr
}

// measureReads fills the report's index read figures.
func (b *run) measureReads(ctx context.Context, cl *client.Client, seed seeded) {
	b.log("index reads through HTTP")
	db, err := index.Open(ctx, b.dbURL, index.Options{})
	if err != nil {
		b.log("index: %v", err)
		return
	}
	defer db.Close()
	got := measureReads(ctx, cl, db, b.plan.reads)
	got.Rows, got.SeedTime = seed.rows, seed.secs
	b.r.Reads = &got
}

// migrate applies the schema to the private database.
func migrate(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect to database: %w", err)
	}
	defer conn.Close(context.Background())
	if err := schema.Apply(ctx, conn); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// stage starts an emulator on dir and a gateway on it, runs the saves
// table, then extra (GC, reads) while both still run.
func (b *run) stage(ctx context.Context, name, dir string, extra func(ctx context.Context, cl *client.Client, emuURL string)) error {
	emuAddr, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	emu, err := startChild(ctx, b.o.Executable, "emulator", filepath.Join(b.tmp, "emulator-"+name+".log"),
		"emulator", "--listen", emuAddr, "--data-dir", dir, "--upload-signing-key", b.uploadKey, "--upload-signing-id", benchSigningID)
	if err != nil {
		return err
	}
	defer emu.Stop()
	emuURL := "http://" + emuAddr
	if err := emu.waitHTTP(ctx, emuURL+"/_emulator/clock", 30*time.Second); err != nil {
		return err
	}
	sc, err := storageClient(ctx, emuURL)
	if err != nil {
		return err
	}
	defer sc.Close()
	if err := sc.Bucket("traces").Create(ctx, "bench", nil); err != nil {
		return fmt.Errorf("create bucket: %w", err)
	}
	gwAddr, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	adminAddr, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	gw, err := startChild(ctx, b.o.Executable, "gateway", filepath.Join(b.tmp, "gateway-"+name+".log"),
		"serve", "--listen", gwAddr, "--database-url", b.dbURL, "--bucket", "traces",
		"--gcs-endpoint", emuURL, "--signing-key-file", b.keyFile, "--admin-listen", adminAddr, "--pprof",
		"--upload-signing-key", b.uploadKey, "--upload-signing-id", benchSigningID)
	if err != nil {
		return err
	}
	defer gw.Stop()
	gwURL := "http://" + gwAddr
	if err := gw.waitHTTP(ctx, gwURL+"/readyz", time.Minute); err != nil {
		return fmt.Errorf("%w\n%s", err, copyTail(gw.log.Name(), 10))
	}
	b.gwURL, b.gwPid = gwURL, gw.cmd.Process.Pid
	cl := client.New(gwURL, b.token)
	defer cl.Close()
	t := &saveTargets{cl: cl, bucket: sc.Bucket("traces"), naive: b.naive, canvases: newCanvases()}
	st := Stage{Storage: name, Dir: dir}
	rng := rand.New(rand.NewPCG(b.o.Seed, 7))
	for _, size := range saveSizes {
		p, err := makePayload(rng, size)
		if err != nil {
			return err
		}
		for _, conc := range saveConcs {
			if err := ctx.Err(); err != nil {
				return err
			}
			b.log("%s: saves %d KiB concurrency %d", name, size, conc)
			var prof func()
			if b.o.ProfileDir != "" && slices.Contains(profileSizes, size) && (conc == 64 || conc == 1) {
				path := filepath.Join(b.o.ProfileDir, fmt.Sprintf("gateway-%s-%dk-c%d.pprof", name, size, conc))
				prof = profileGateway(ctx, "http://"+adminAddr, path, b.plan.saves.maxDur, b.log)
			}
			st.Cells = append(st.Cells, measureSaveCell(ctx, t, p, conc, b.plan.saves, gw.cmd.Process.Pid, emu.cmd.Process.Pid, prof))
		}
	}
	b.r.Stages = append(b.r.Stages, st)
	extra(ctx, cl, emuURL)
	return ctx.Err()
}

// profileSizes are the trace sizes (KiB) whose c=1 and c=64 cells
// --profile profiles.
var profileSizes = []int{16}

// measureSaveCell runs the gateway, raw and naive paths one after another.
func measureSaveCell(ctx context.Context, t *saveTargets, p payload, conc int, b bounds, gwPid, emuPid int, prof func()) Cell {
	c := Cell{SizeKiB: p.sizeKiB, Conc: conc}
	_ = resetPeak(gwPid)
	gw0, _ := readProc(gwPid)
	emu0, _ := readProc(emuPid)
	c.Gateway = runLoad(ctx, conc, b, t.gateway(p))
	if prof != nil {
		prof()
	}
	gw1, _ := readProc(gwPid)
	emu1, _ := readProc(emuPid)
	// The warm-up calls (one per worker) are in the CPU time too.
	if n := c.Gateway.Ops + conc; n > 0 {
		c.GwCPU1k = (gw1.CPU - gw0.CPU).Seconds() * 1000 / float64(n)
		c.EmuCPU1k = (emu1.CPU - emu0.CPU).Seconds() * 1000 / float64(n)
	}
	c.GwPeakMiB = float64(gw1.HWMKB) / 1024
	// The raw path is the storage client in this process: its CPU per
	// upload is what the gateway's CPU per save is held against.
	self0, _ := readProc(os.Getpid())
	raw := runLoad(ctx, conc, b, t.raw(p))
	self1, _ := readProc(os.Getpid())
	if n := raw.Ops + conc; raw.Ops > 0 {
		c.RawCPU1k = (self1.CPU - self0.CPU).Seconds() * 1000 / float64(n)
	}
	naive := runLoad(ctx, conc, b, t.naiveSave(p))
	c.Raw, c.Naive = &raw, &naive
	return c
}

// profileGateway starts a CPU profile of the gateway (its pprof on the
// admin listener) for about d (the profile ends with the cell or after d,
// whichever is later) and returns a func that waits for it and
// writes it to path.
func profileGateway(ctx context.Context, adminURL, path string, d time.Duration, log func(string, ...any)) func() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		secs := max(1, int(d/time.Second))
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", adminURL, secs), nil)
		if err != nil {
			log("profile: %v", err)
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log("profile: %v", err)
			return
		}
		defer resp.Body.Close()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			log("profile: %v", err)
			return
		}
		f, err := os.Create(path)
		if err != nil {
			log("profile: %v", err)
			return
		}
		_, err = io.Copy(f, resp.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			log("profile: %v", err)
			return
		}
		log("wrote %s", path)
	}()
	return func() { <-done }
}
