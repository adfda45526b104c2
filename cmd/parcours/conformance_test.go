package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// startHub runs the real serve wiring on 127.0.0.1:0 until the test ends and
// returns its FHIR base (the one place these tests start the hub).
func startHub(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, serveConfig{Addr: "127.0.0.1:0", Data: t.TempDir(), MaxBody: 1 << 20, insecure: true}, io.Discard, io.Discard, ready)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case addr := <-ready:
		return "http://" + addr + "/fhir"
	case err := <-done:
		t.Fatalf("serve ended before listening: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	return ""
}

func TestConformanceAgainstHub(t *testing.T) {
	base := startHub(t)
	for _, tt := range []struct {
		args     []string
		validity string
	}{
		{[]string{"--url", base}, "resources valid"},
		{[]string{"--url", base, "--no-validate"}, "no validator configured"},
	} {
		t.Run(strings.Join(tt.args[2:], " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := runConformance(context.Background(), tt.args, &out, &errOut)
			t.Log("\n" + out.String())
			if err != nil {
				t.Fatalf("runConformance: %v (stderr %q)", err, errOut.String())
			}
			table := out.String()
			for _, want := range []string{"GROUP", "crud", "create", "PASS", " 0 failed", tt.validity} {
				if !strings.Contains(table, want) {
					t.Errorf("table lacks %q", want)
				}
			}
			if strings.Contains(table, "FAIL") {
				t.Error("table has a FAIL row")
			}
		})
	}
}

func TestConformanceExitStatus(t *testing.T) {
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception"}]}`)
	}))
	defer failing.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()

	tests := []struct {
		name   string
		args   []string
		status int    // the exitError wanted; 0: a plain error
		output string // in stdout+stderr
	}{
		{"a check fails", []string{"--url", failing.URL + "/fhir"}, 1, "FAIL"},
		{"no --url", nil, 2, "-no-validate"},
		{"stray argument", []string{"--url", failing.URL, "extra"}, 2, "Usage: parcours conformance"},
		{"unreachable", []string{"--url", gone.URL + "/fhir"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := runConformance(context.Background(), tt.args, &out, &out)
			var ee exitError
			switch {
			case err == nil:
				t.Fatalf("no error; output:\n%s", out.String())
			case tt.status == 0 && errors.As(err, &ee):
				t.Errorf("error %v, want a plain error", err)
			case tt.status != 0 && (!errors.As(err, &ee) || int(ee) != tt.status):
				t.Errorf("error %v, want exit status %d", err, tt.status)
			}
			if !strings.Contains(out.String(), tt.output) {
				t.Errorf("output lacks %q:\n%s", tt.output, out.String())
			}
		})
	}
}

func TestConformanceHelp(t *testing.T) {
	var out bytes.Buffer
	err := runConformance(context.Background(), []string{"--help"}, &out, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"-url", "-token", "-purpose", "-no-validate"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %s:\n%s", want, out.String())
		}
	}
}
