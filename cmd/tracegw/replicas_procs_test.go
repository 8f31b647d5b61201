package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tracegw/tracegw/emulator"
)

// The process side of TestReplicas: the tracegw binary built once, child
// processes that die with the test, and a recording proxy in front of the
// emulator.

// buildTracegw builds this package's binary into dir with `go build` and
// returns its path.
func buildTracegw(t *testing.T, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "tracegw")
	cmd := exec.Command(goBin, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is a child process whose output goes to a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startProc starts bin with args and env added to the test's environment.
// The kernel kills it if the test binary dies; t.Cleanup kills it too.
func startProc(t *testing.T, name, logDir, bin string, env []string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// tail returns the end of the process's log, for failure messages.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return p.name + " log (" + p.log + "):\n" + string(b)
}

// runProc runs bin to completion and returns its stdout; a non-zero exit
// fails the test.
func runProc(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tracegw %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// waitHTTP waits until GET url answers 200, failing with p's log if p
// exits first or the deadline passes.
func waitHTTP(t *testing.T, p *proc, url string) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	ok := func() bool {
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !ok() {
		select {
		case <-p.done:
			t.Fatalf("%s exited before %s answered\n%s", p.name, url, p.tail())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer %s within a minute\n%s", p.name, url, p.tail())
		}
	}
}

// patch is one object metadata PATCH the proxy saw.
type patch struct {
	Object     string
	CustomTime time.Time // zero if the PATCH did not set it
	Hold       bool      // the PATCH also set temporaryHold (a hold or a release)
	Status     int
}

// patchRecorder is a reverse proxy in front of the emulator that records every
// object metadata PATCH (which is how customTime is renewed) with its
// outcome. It changes nothing it forwards.
type patchRecorder struct {
	proxy  *httputil.ReverseProxy
	mu     sync.Mutex
	patchs []patch
}

func newPatchRecorder(t *testing.T, target string) (*patchRecorder, string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	// SetURL also sets the Host header to the emulator's: it serves the XML
	// API (uploads) only on the host it listens on.
	r := &patchRecorder{proxy: &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) }}}
	// A request of a replica killed mid-call is cancelled: answer it
	// quietly (the replica is gone anyway).
	r.proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: r}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return r, "http://" + ln.Addr().String()
}

func (r *patchRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	_, object, isObject := strings.Cut(req.URL.Path, "/o/")
	if req.Method != http.MethodPatch || !strings.HasPrefix(req.URL.Path, "/storage/v1/b/") || !isObject {
		r.proxy.ServeHTTP(w, req)
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	var fields struct {
		CustomTime    *time.Time `json:"customTime"`
		TemporaryHold *bool      `json:"temporaryHold"`
	}
	_ = json.Unmarshal(body, &fields)
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	r.proxy.ServeHTTP(sw, req)
	p := patch{Object: object, Hold: fields.TemporaryHold != nil, Status: sw.status}
	if fields.CustomTime != nil {
		p.CustomTime = fields.CustomTime.UTC()
	}
	r.mu.Lock()
	r.patchs = append(r.patchs, p)
	r.mu.Unlock()
}

// patches returns what was recorded so far.
func (r *patchRecorder) patches() []patch {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]patch(nil), r.patchs...)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(s int) {
	w.status = s
	w.ResponseWriter.WriteHeader(s)
}

// emulatorClockAdvance advances the emulator at base by d and returns its
// new time.
func emulatorClockAdvance(t *testing.T, base string, d time.Duration) time.Time {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/_emulator/clock/advance?by=%s", base, d), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(emulator.ControlHeader, "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct {
		Now time.Time `json:"now"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("advance: %d %v", resp.StatusCode, err)
	}
	return s.Now
}
