package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/tracegw/tracegw/internal/ttl"
)

// runStatus prints GC health (last pass, last successful pass, keeper
// deadline), the retention rule and any change in progress, keep-N, the
// notification lag and the index's size, then one WARN line per problem.
// It returns an error (exit status 1) when it warned.
func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := Load("status", args, os.Getenv, nil)
	if err != nil {
		return err
	}
	s, note, closeAll, err := readStatus(ctx, c)
	if err != nil {
		return err
	}
	defer closeAll()
	fmt.Fprintf(stdout, "tracegw status at %s%s, bucket %s\n", s.Now.Format(time.RFC3339), note, c.Bucket)
	n := s.Write(stdout, ttl.StatusOptions{
		Margin: time.Duration(c.RenewMargin), Interval: c.GCInterval, MaxNotifyLag: time.Duration(c.MaxNotifyLag),
	})
	if n > 0 {
		return fmt.Errorf("%d warnings (WARN lines above)", n)
	}
	return nil
}
