package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
)

// version and commit are set at build time with
// -ldflags "-X main.version=v1.2.3 -X main.commit=$(git rev-parse HEAD)";
// commit is for builds that carry no version-control stamp of their own
// (a source archive, a container build without .git).
var (
	version = "dev"
	commit  = ""
)

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if _, err := Load("version", args, os.Getenv, nil); err != nil {
		return err
	}
	bi, _ := debug.ReadBuildInfo()
	writeVersion(stdout, bi)
	return nil
}

// writeVersion prints the version, the commit the binary was built from
// (the Go toolchain's vcs.revision, vcs.time and vcs.modified stamp, else
// main.commit) and the Go toolchain. A binary without either says so and
// how to get one that has it, rather than printing nothing.
func writeVersion(w io.Writer, bi *debug.BuildInfo) {
	fmt.Fprintf(w, "tracegw %s\n", version)
	var rev, at, modified string
	if bi != nil {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			fmt.Fprintf(w, "module %s %s\n", bi.Main.Path, v)
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
	}
	switch {
	case rev != "":
		fmt.Fprintf(w, "commit %s", rev)
		if at != "" {
			fmt.Fprintf(w, " (%s)", at)
		}
		if modified == "true" {
			fmt.Fprint(w, " with uncommitted changes")
		}
		fmt.Fprintln(w)
	case commit != "":
		fmt.Fprintf(w, "commit %s (set at build time)\n", commit)
	default:
		fmt.Fprintln(w, "commit unknown: this binary carries no version-control stamp "+
			"(built by `go run`, with -buildvcs=false, outside a git clone, or in a git worktree, which Go does not stamp); "+
			"`go build ./cmd/tracegw` in a git clone records it, or pass -ldflags \"-X main.commit=$(git rev-parse HEAD)\"")
	}
	goVersion := runtime.Version()
	if bi != nil && bi.GoVersion != "" {
		goVersion = bi.GoVersion
	}
	fmt.Fprintf(w, "%s %s/%s\n", goVersion, runtime.GOOS, runtime.GOARCH)
}
