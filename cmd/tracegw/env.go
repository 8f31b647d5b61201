package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// Load: the command line first, then TRACEGW_<FLAG> for every flag it did
// not give.

// envName is the environment variable of a flag: TRACEGW_ and the name in
// upper case, '-' as '_'.
func envName(flagName string) string {
	return "TRACEGW_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Load parses a subcommand's args, then fills unset flags from the
// environment. It is pure: getenv is the only source of environment. A bad
// value names the flag (or variable), the value and the form expected.
func Load(cmd string, args []string, getenv func(string) string, extra func(fs *flag.FlagSet)) (Config, error) {
	if _, ok := commandFlags[cmd]; !ok {
		return Config{}, fmt.Errorf("unknown command %q", cmd)
	}
	c := defaultsFor(cmd)
	fs := newFlagSet(cmd, &c)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 && !takesArgs[cmd] {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c.Args = fs.Args()
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		env := envName(f.Name)
		if v := getenv(env); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("invalid value %q for %s (--%s): %w", v, env, f.Name, err))
			}
			given[f.Name] = true
		}
	})
	c.Given = given
	if cmd == "dev" && c.DatabaseURL == "" {
		// The variable most PostgreSQL tools read, kept as dev's fallback.
		c.DatabaseURL = getenv("DATABASE_URL")
	}
	return c, errors.Join(errs...)
}
