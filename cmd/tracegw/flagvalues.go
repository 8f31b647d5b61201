package main

import (
	"errors"
	"flag"
	"strconv"
	"time"

	"github.com/tracegw/tracegw/internal/days"
)

// The flag values. Each Set error says what form is expected; the flag
// package adds the flag's name and the value given, Load the variable.

// Days is a duration flag that also accepts a day unit: "7d", "1d12h",
// "36h" (days.Parse).
type Days time.Duration

func (d *Days) String() string { return days.Format(time.Duration(*d)) }

// Set parses the forms days.Parse accepts.
func (d *Days) Set(s string) error {
	v, err := days.Parse(s)
	if err != nil {
		return err
	}
	*d = Days(v)
	return nil
}

type stringValue struct{ p *string }

func (v stringValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}
func (v stringValue) Set(s string) error { *v.p = s; return nil }

type boolValue struct{ p *bool }

func (v boolValue) String() string   { return strconv.FormatBool(v.p != nil && *v.p) }
func (v boolValue) IsBoolFlag() bool { return true }
func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("want true or false")
	}
	*v.p = b
	return nil
}

type intValue struct{ p *int }

func (v intValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}
func (v intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("want a whole number such as 10")
	}
	*v.p = n
	return nil
}

type int64Value struct{ p *int64 }

func (v int64Value) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatInt(*v.p, 10)
}
func (v int64Value) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return errors.New("want a whole number of bytes such as 16777216")
	}
	*v.p = n
	return nil
}

type uint64Value struct{ p *uint64 }

func (v uint64Value) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatUint(*v.p, 10)
}
func (v uint64Value) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return errors.New("want a whole number, 0 or more")
	}
	*v.p = n
	return nil
}

// durationValue is a time.Duration flag that takes days too (days.Parse),
// like the Days fields: every duration flag has one grammar.
type durationValue struct{ p *time.Duration }

func (v durationValue) String() string {
	if v.p == nil {
		return "0s"
	}
	return days.Format(*v.p)
}
func (v durationValue) Set(s string) error {
	d, err := days.Parse(s)
	if err != nil {
		return err
	}
	*v.p = d
	return nil
}

func str(f func(c *Config) *string) func(*flag.FlagSet, *Config, string, string) {
	return func(fs *flag.FlagSet, c *Config, n, u string) { fs.Var(stringValue{f(c)}, n, u) }
}
func boolean(f func(c *Config) *bool) func(*flag.FlagSet, *Config, string, string) {
	return func(fs *flag.FlagSet, c *Config, n, u string) { fs.Var(boolValue{f(c)}, n, u) }
}
func integer(f func(c *Config) *int) func(*flag.FlagSet, *Config, string, string) {
	return func(fs *flag.FlagSet, c *Config, n, u string) { fs.Var(intValue{f(c)}, n, u) }
}
func dur(f func(c *Config) *time.Duration) func(*flag.FlagSet, *Config, string, string) {
	return func(fs *flag.FlagSet, c *Config, n, u string) { fs.Var(durationValue{f(c)}, n, u) }
}
func daysFlag(f func(c *Config) *Days) func(*flag.FlagSet, *Config, string, string) {
	return func(fs *flag.FlagSet, c *Config, n, u string) { fs.Var(f(c), n, u) }
}

// typeName is the word Usage prints after a flag's name: the form of its
// value (none for a boolean).
func typeName(v flag.Value) string {
	switch v.(type) {
	case boolValue:
		return ""
	case intValue, int64Value, uint64Value:
		return "number"
	case durationValue, *Days:
		return "duration"
	}
	return "string"
}
