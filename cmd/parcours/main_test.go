package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeEndToEnd starts the real wiring on :0 and talks FHIR to it.
func TestServeEndToEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		done <- serve(ctx, serveConfig{Addr: "127.0.0.1:0", Data: t.TempDir(), MaxBody: 1 << 20}, &out, io.Discard, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve ended before listening: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	base := "http://" + addr + "/fhir"

	resp, err := http.Post(base+"/Patient", "application/fhir+json", strings.NewReader(`{"resourceType":"Patient","name":[{"family":"Lefèvre"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var created map[string]any
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: status %d", resp.StatusCode)
	}
	resp, err = http.Get(base + "/Patient/" + created["id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	var read map[string]any
	json.NewDecoder(resp.Body).Decode(&read)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") != `W/"1"` {
		t.Fatalf("read: status %d, ETag %q", resp.StatusCode, resp.Header.Get("ETag"))
	}
	if name := read["name"].([]any)[0].(map[string]any)["family"]; name != "Lefèvre" {
		t.Errorf("read back family %v, want Lefèvre", name)
	}
	for _, path := range []string{"/healthz", "/fhir/metadata"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d", path, resp.StatusCode)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve returned %v after shutdown", err)
	}
	if !strings.Contains(out.String(), "listening on http://"+addr) {
		t.Errorf("serve did not announce its address: %q", out.String())
	}
}

// TestHelp checks that every command answers --help with its flags.
func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"help"}, "parcours serve"},
		{[]string{"--help"}, "parcours demo"},
		{[]string{"serve", "--help"}, "-addr"},
		{[]string{"demo", "--help"}, "-data"},
		{[]string{"load", "--help"}, "-conns"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), tt.args, &out, &errOut)
			if err != nil && !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("run: %v", err)
			}
			if got := out.String() + errOut.String(); !strings.Contains(got, tt.want) {
				t.Errorf("help output lacks %q:\n%s", tt.want, got)
			}
		})
	}
	var errOut bytes.Buffer
	if err := run(context.Background(), []string{"frobnicate"}, io.Discard, &errOut); err == nil {
		t.Error("unknown command: want an error")
	}
}
