package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/jackc/pgx/v5"

	"github.com/tracegw/tracegw/schema"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := Load("migrate", args, os.Getenv, nil)
	if err != nil {
		return err
	}
	if c.DatabaseURL == "" {
		return errors.New("--database-url (TRACEGW_DATABASE_URL) is required")
	}
	if err := migrate(ctx, c.DatabaseURL); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "schema up to date")
	return nil
}

// migrate applies the embedded migrations (idempotent).
func migrate(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("--database-url: connect to database: %w", err)
	}
	defer conn.Close(context.Background())
	if err := schema.Apply(ctx, conn); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}
