package bench

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// utime 250 and stime 50 ticks (fields 14 and 15) after a command
	// name holding a space and a ")".
	line := "4242 (tracegw serve) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 12 0 100 123456789 2000 18446744073709551615\n"
	got, err := parseStatCPU(line)
	if err != nil || got != 3*time.Second {
		t.Errorf("parseStatCPU = %v, %v; want 3s", got, err)
	}
	for _, bad := range []string{"", "4242 tracegw S 1", "4242 (tracegw) S 1 2 3", "4242 (t) S 1 4242 4242 0 -1 4194560 1234 0 0 0 x 50 0"} {
		if _, err := parseStatCPU(bad); err == nil {
			t.Errorf("parseStatCPU(%q) = nil error, want one", bad)
		}
	}
}

func TestReadProcSelf(t *testing.T) {
	s, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.HWMKB <= 0 || s.CPU < 0 {
		t.Errorf("readProc(self) = %+v, want a peak RSS and a CPU time", s)
	}
}
