package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tracegw/tracegw/client"
	"github.com/tracegw/tracegw/internal/httpapi"
	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

// benchOpts are bench's own flags.
type benchOpts struct {
	quick    bool
	url      string
	token    string
	jsonPath string
	seed     uint64
	profile  string
}

// benchPlan is how long each part runs: --quick or full.
type benchPlan struct {
	saves, reads, gcSaves bounds
	notifyMsgs, applyN    int
	notifyWindow          time.Duration
}

var (
	quickPlan = benchPlan{
		saves: bounds{3_000, 800 * time.Millisecond}, reads: bounds{2_000, time.Second},
		gcSaves: bounds{4_000, 1500 * time.Millisecond}, notifyMsgs: 10_000, applyN: 20_000, notifyWindow: 8 * time.Second,
	}
	fullPlan = benchPlan{
		saves: bounds{40_000, 4 * time.Second}, reads: bounds{20_000, 6 * time.Second},
		gcSaves: bounds{40_000, 8 * time.Second}, notifyMsgs: 50_000, applyN: 100_000, notifyWindow: 30 * time.Second,
	}
)

var (
	benchSizes = []int{2, 16, 256} // KiB
	benchConcs = []int{1, 16, 64}
)

// saveCell is one row of the saves table: the three paths side by side,
// and the gateway's and the emulator's cost during the gateway's run.
type saveCell struct {
	SizeKiB   int         `json:"size_kib"`
	Conc      int         `json:"concurrency"`
	Gateway   loadResult  `json:"gateway"`
	Raw       *loadResult `json:"raw,omitempty"`
	Naive     *loadResult `json:"naive,omitempty"`
	GwCPU1k   float64     `json:"gateway_cpu_seconds_per_1000,omitempty"`
	GwPeakMiB float64     `json:"gateway_peak_rss_mib,omitempty"`
	EmuCPU1k  float64     `json:"emulator_cpu_seconds_per_1000,omitempty"`
}

// stageReport is the saves table of one emulator storage.
type stageReport struct {
	Storage string     `json:"storage"`
	Dir     string     `json:"dir"`
	Cells   []saveCell `json:"cells"`
}

// benchReport is everything the bench prints, also written as JSON.
type benchReport struct {
	Mode    string         `json:"mode"`
	Host    string         `json:"host"`
	Started time.Time      `json:"started"`
	Seconds float64        `json:"seconds"`
	Method  string         `json:"method"`
	Stages  []stageReport  `json:"stages"`
	Reads   *readResults   `json:"reads,omitempty"`
	GC      *gcResults     `json:"gc,omitempty"`
	Notify  *notifyResults `json:"notify,omitempty"`
	Targets []targetRow    `json:"targets"`
}

const benchMethod = "gateway = `tracegw serve` and emulator = `tracegw emulator` (filesystem backend), each a child process of the bench; " +
	"load generator (client package), raw and naive paths, GC and notify run in the bench process. " +
	"CPU = utime+stime from /proc/PID/stat over each gateway cell, per 1000 saves; peak RSS = VmHWM from /proc/PID/status, reset before each cell with clear_refs. " +
	"PostgreSQL is a private server on disk (fsync on)."

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o benchOpts
	_, err := Load("bench", args, os.Getenv, func(fs *flag.FlagSet) {
		fs.BoolVar(&o.quick, "quick", false, "short run (under 2 minutes)")
		fs.StringVar(&o.url, "url", "", "measure a running gateway on loopback (saves and reads only) instead of an embedded stack")
		fs.StringVar(&o.token, "token", "", "bearer token for --url (executor+editor rights: admin)")
		fs.StringVar(&o.jsonPath, "json", "", "also write the results as JSON to this file")
		fs.Uint64Var(&o.seed, "seed", 1, "seed of the generated payloads")
		fs.StringVar(&o.profile, "profile", "", "write CPU profiles of the gateway during the 16 KiB c=64 saves to this directory")
	})
	if err != nil {
		return err
	}
	plan := fullPlan
	r := &benchReport{Mode: "full", Started: time.Now().UTC(), Method: benchMethod,
		Host: fmt.Sprintf("%s %s/%s, %d CPUs", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())}
	if o.quick {
		plan, r.Mode = quickPlan, "quick"
	}
	log := func(format string, a ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", a...) }
	if o.url != "" {
		err = benchRemote(ctx, o, plan, r, log)
	} else {
		err = benchEmbedded(ctx, o, plan, r, log)
	}
	r.Seconds = time.Since(r.Started).Seconds()
	r.Targets = targets(r)
	printReport(stdout, r)
	if o.jsonPath != "" {
		b, jerr := json.MarshalIndent(r, "", "  ")
		if jerr == nil {
			jerr = os.WriteFile(o.jsonPath, append(b, '\n'), 0o644)
		}
		err = errors.Join(err, jerr)
	}
	return err
}

// benchRemote measures saves and reads of a gateway someone else runs.
func benchRemote(ctx context.Context, o benchOpts, plan benchPlan, r *benchReport, log func(string, ...any)) error {
	u, err := url.Parse(o.url)
	if err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--url %s: the bench only talks to loopback", o.url)
	}
	r.Method = "gateway at --url; only its saves and reads are measured (no raw/naive baseline, CPU, RSS, GC or notify)"
	cl := client.New(o.url, o.token)
	defer cl.Close()
	t := &saveTargets{cl: cl, canvases: newCanvases()}
	st := stageReport{Storage: "remote", Dir: o.url}
	rng := rand.New(rand.NewPCG(o.seed, 9))
	for _, size := range benchSizes {
		p, err := makePayload(rng, size)
		if err != nil {
			return err
		}
		for _, conc := range benchConcs {
			log("saves %d KiB concurrency %d", size, conc)
			st.Cells = append(st.Cells, saveCell{SizeKiB: size, Conc: conc, Gateway: runLoad(ctx, conc, plan.saves, t.gateway(p))})
		}
	}
	r.Stages = append(r.Stages, st)
	return ctx.Err()
}

func newCanvases() []client.CanvasID {
	out := make([]client.CanvasID, benchCanvases)
	for i := range out {
		out[i] = client.CanvasID(traces.NewTraceID(time.Now()).String())
	}
	return out
}

// benchEmbedded runs the whole comparison on a private stack.
func benchEmbedded(ctx context.Context, o benchOpts, plan benchPlan, r *benchReport, log func(string, ...any)) (err error) {
	tmp, err := benchTemp("", "tgwbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	log("starting PostgreSQL in %s", tmp)
	pg, dbURL, err := startDevPG(ctx, tmp)
	if err != nil {
		return err
	}
	defer func() {
		if serr := pg.Stop(); serr != nil {
			err = errors.Join(err, serr)
		}
	}()
	if err := migrate(ctx, dbURL); err != nil {
		return err
	}
	keyFile := filepath.Join(tmp, "signing.key")
	key, err := httpapi.LoadOrCreateKey(keyFile)
	if err != nil {
		return err
	}
	token, err := httpapi.Sign(key, httpapi.Claims{Role: httpapi.RoleAdmin, Subject: "tracegw-bench", IssuedAt: time.Now(), Expiry: time.Now().Add(24 * time.Hour)})
	if err != nil {
		return err
	}
	naive, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return err
	}
	defer naive.Close()
	if _, err := naive.Exec(ctx, naiveTable); err != nil {
		return err
	}

	log("seeding the index with COPY")
	t0 := time.Now()
	rows, dels, err := seedIndex(ctx, dbURL, plan.notifyMsgs+plan.applyN)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	reads := &readResults{Rows: rows, SeedTime: time.Since(t0).Seconds()}
	log("seeded %d rows in %.1fs", rows, reads.SeedTime)

	shm, err := benchTemp("/dev/shm", "tgwbench-")
	if err != nil {
		return fmt.Errorf("tmpfs: %w", err)
	}
	defer os.RemoveAll(shm)
	stages := []struct{ name, dir string }{{"disk", filepath.Join(tmp, "gcs-disk")}, {"tmpfs", shm}}
	for si, sg := range stages {
		last := si == len(stages)-1
		err := benchStage(ctx, stageEnv{tmp: tmp, dbURL: dbURL, keyFile: keyFile, token: token, naive: naive, o: o, plan: plan, log: log},
			sg.name, sg.dir, r, func(cl *client.Client, emuURL string) {
				if si == 0 {
					// GC on the default (disk) storage, over what the saves left.
					log("GC")
					gr := gcResults{}
					rig, err := newGCRig(ctx, emuURL, "traces", dbURL)
					if err != nil {
						gr.Err = err.Error()
					} else {
						p, _ := makePayload(rand.New(rand.NewPCG(o.seed, 16)), 16)
						t := &saveTargets{cl: cl, canvases: newCanvases()}
						gr = measureGC(ctx, rig, t.gateway(p), plan.gcSaves)
						rig.close()
					}
					r.GC = &gr
				}
				if last {
					log("index reads through HTTP")
					db, err := index.Open(ctx, dbURL, index.Options{})
					if err != nil {
						log("index: %v", err)
						return
					}
					got := measureReads(ctx, cl, db, plan.reads)
					db.Close()
					got.Rows, got.SeedTime = reads.Rows, reads.SeedTime
					r.Reads = &got
				}
			})
		if err != nil {
			return fmt.Errorf("stage %s: %w", sg.name, err)
		}
	}
	log("notify")
	n := min(plan.notifyMsgs, len(dels))
	nr := measureNotify(ctx, dbURL, "traces", dels[:n], dels[n:], plan.notifyWindow)
	r.Notify = &nr
	return ctx.Err()
}

type stageEnv struct {
	tmp, dbURL, keyFile, token string
	naive                      *pgxpool.Pool
	o                          benchOpts
	plan                       benchPlan
	log                        func(string, ...any)
}

// benchStage starts an emulator on dir and a gateway on it, runs the
// saves table, then extra (GC, reads) while both still run.
func benchStage(ctx context.Context, e stageEnv, name, dir string, r *benchReport, extra func(cl *client.Client, emuURL string)) error {
	emuAddr, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	emu, err := startChild(ctx, "emulator", filepath.Join(e.tmp, "emulator-"+name+".log"),
		"emulator", "--listen", emuAddr, "--data-dir", dir)
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
	gw, err := startChild(ctx, "gateway", filepath.Join(e.tmp, "gateway-"+name+".log"),
		"serve", "--listen", gwAddr, "--database-url", e.dbURL, "--bucket", "traces",
		"--gcs-endpoint", emuURL, "--signing-key-file", e.keyFile, "--admin-listen", adminAddr, "--pprof")
	if err != nil {
		return err
	}
	defer gw.Stop()
	gwURL := "http://" + gwAddr
	if err := gw.waitHTTP(ctx, gwURL+"/readyz", time.Minute); err != nil {
		return fmt.Errorf("%w\n%s", err, copyTail(gw.log.Name(), 10))
	}
	cl := client.New(gwURL, e.token)
	defer cl.Close()
	t := &saveTargets{cl: cl, bucket: sc.Bucket("traces"), naive: e.naive, canvases: newCanvases()}
	st := stageReport{Storage: name, Dir: dir}
	rng := rand.New(rand.NewPCG(e.o.seed, 7))
	for _, size := range benchSizes {
		p, err := makePayload(rng, size)
		if err != nil {
			return err
		}
		for _, conc := range benchConcs {
			if err := ctx.Err(); err != nil {
				return err
			}
			e.log("%s: saves %d KiB concurrency %d", name, size, conc)
			var prof func()
			if e.o.profile != "" && size == 16 && conc == 64 {
				prof = profileGateway(ctx, "http://"+adminAddr, filepath.Join(e.o.profile, "gateway-"+name+".pprof"), e.plan.saves.maxDur, e.log)
			}
			st.Cells = append(st.Cells, measureSaveCell(ctx, t, p, conc, e.plan.saves, gw.cmd.Process.Pid, emu.cmd.Process.Pid, prof))
		}
	}
	r.Stages = append(r.Stages, st)
	extra(cl, emuURL)
	return ctx.Err()
}

// measureSaveCell runs the gateway, raw and naive paths one after another.
func measureSaveCell(ctx context.Context, t *saveTargets, p payload, conc int, b bounds, gwPid, emuPid int, prof func()) saveCell {
	c := saveCell{SizeKiB: p.sizeKiB, Conc: conc}
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
	raw := runLoad(ctx, conc, b, t.raw(p))
	naive := runLoad(ctx, conc, b, t.naiveSave(p))
	c.Raw, c.Naive = &raw, &naive
	return c
}

// profileGateway starts a CPU profile of the gateway (its pprof on the
// admin listener) for about d and returns a func that waits for it and
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
