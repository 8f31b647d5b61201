package bench

import (
	"context"
	"strings"
	"testing"
)

func TestOptionsValidate(t *testing.T) {
	pg := func(context.Context, string) (string, func() error, error) { return "", nil, nil }
	embedded := Options{Executable: "/usr/local/bin/tracegw", Postgres: pg}
	for _, tc := range []struct {
		name string
		o    Options
		want []string // substrings of the error; none: valid
	}{
		{"embedded", embedded, nil},
		{"remote on 127.0.0.1", Options{URL: "http://127.0.0.1:7070", Token: "t"}, nil},
		{"remote on localhost", Options{URL: "https://localhost:7070"}, nil},
		{"remote on ::1", Options{URL: "http://[::1]:7070"}, nil},
		{"remote elsewhere", Options{URL: "http://10.0.0.1:7070"}, []string{"--url http://10.0.0.1:7070: the bench only talks to loopback"}},
		{"remote by name", Options{URL: "http://example.com"}, []string{"only talks to loopback"}},
		{"remote without scheme", Options{URL: "localhost:7070"}, []string{"--url localhost:7070: must be an http or https URL"}},
		{"remote unparsable", Options{URL: "http://127.0.0.1:port"}, []string{"--url http://127.0.0.1:port:", "invalid port"}},
		{"embedded without the executable and PostgreSQL", Options{}, []string{"Options.Executable", "Options.Postgres"}},
	} {
		err := tc.o.Validate()
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%s: Validate = %v, want nil", tc.name, err)
			}
			continue
		}
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: Validate = %v, want it to say %q", tc.name, err, w)
			}
		}
	}
}

// TestRunRefusesInvalidOptions: an invalid Options starts nothing.
func TestRunRefusesInvalidOptions(t *testing.T) {
	r, err := Run(t.Context(), Options{URL: "http://192.0.2.1"})
	if err == nil || !strings.Contains(err.Error(), "loopback") || r.Mode != "" {
		t.Errorf("Run = %+v, %v; want the zero report and the validation error", r, err)
	}
}
