package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"github.com/parcours-sante/parcours/server/auth"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestServeEndToEnd starts the real wiring on :0 and talks FHIR to it.
func TestServeEndToEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var out bytes.Buffer
	data := t.TempDir()
	go func() {
		done <- serve(ctx, serveConfig{Addr: "127.0.0.1:0", Data: data, MaxBody: 1 << 20, Dev: true}, &out, io.Discard, ready)
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
	var tokens map[string]string
	b, err := os.ReadFile(filepath.Join(data, "dev-tokens.json"))
	if err != nil {
		t.Fatalf("serve --dev wrote no dev-tokens.json: %v", err)
	}
	if err := json.Unmarshal(b, &tokens); err != nil || len(tokens) != 11 || tokens["patient"] != "" {
		t.Fatalf("dev-tokens.json: %v, %d tokens, want one per actor type but the patient, who has none yet (11)", err, len(tokens))
	}
	call := func(actor, purpose, method, path, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tokens[actor])
		req.Header.Set("X-Purpose-Of-Use", purpose)
		req.Header.Set("Content-Type", "application/fhir+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	// Hospital IT pushes a patient and a stay; the hospital's clinician
	// reads the patient for treatment (same organisation in dev mode).
	resp := call("hospital-it", "HOPERAT", http.MethodPost, "/Patient", `{"resourceType":"Patient","name":[{"family":"Lefèvre"}]}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: status %d", resp.StatusCode)
	}
	id := strings.Split(strings.TrimPrefix(resp.Header.Get("Location"), base+"/Patient/"), "/")[0]
	resp = call("hospital-it", "HOPERAT", http.MethodPost, "/Encounter", `{"resourceType":"Encounter","status":"finished","class":{"code":"IMP"},"subject":{"reference":"Patient/`+id+`"}}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create Encounter: status %d", resp.StatusCode)
	}
	if resp := call("gp", "TREAT", http.MethodGet, "/Patient/"+id, ""); resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Decision-Id") == "" {
		t.Errorf("gp outside the care team: status %d, X-Decision-Id %q; want 403 with a decision id", resp.StatusCode, resp.Header.Get("X-Decision-Id"))
	}
	resp = call("hospital-clinician", "TREAT", http.MethodGet, "/Patient/"+id, "")
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
		{[]string{"conformance", "--help"}, "-no-validate"},
		{[]string{"token", "--help"}, "-purposes"},
		{[]string{"ingest", "--help"}, "-source"},
		{[]string{"gen", "--help"}, "-patients"},
		{[]string{"help"}, "parcours gen"},
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

// TestToken mints a token with the dev key of a data directory and checks
// that the hub's verifier accepts it with the given claims.
func TestToken(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"token", "--data", dir, "--actor", "gp", "--sub", "dr", "--purposes", "TREAT"}, &out, &errOut); err == nil {
		t.Fatal("token without a dev key succeeded")
	}
	secret, err := auth.DevSecret(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	args := []string{"token", "--data", dir, "--actor", "gp", "--sub", "dr-x", "--purposes", "TREAT,COC", "--org", "https://finess.esante.gouv.fr|1", "--care-team", "CareTeam/a,CareTeam/b", "--ttl", "10m"}
	if err := run(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("token: %v %s", err, errOut.String())
	}
	v, err := auth.NewVerifier(auth.Config{Issuer: auth.DevIssuer, Audience: auth.DevAudience, DevSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify("Bearer " + strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatalf("minted token rejected: %v", err)
	}
	if c.ActorType != "gp" || c.Subject != "dr-x" || strings.Join(c.Purposes, ",") != "TREAT,COC" || len(c.CareTeams) != 2 || c.Org != "https://finess.esante.gouv.fr|1" {
		t.Errorf("claims %+v", c)
	}
	if err := run(context.Background(), []string{"token", "--data", dir, "--actor", "wizard", "--sub", "x", "--purposes", "TREAT"}, io.Discard, io.Discard); err == nil {
		t.Error("unknown actor type accepted")
	}
}

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemo runs `parcours demo` on :0 with testdata/demo: the four native
// files load through $ingest without issue, every FHIR bundle (Synthea,
// consents) is either loaded or reported as refused, and the command says
// what to try.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--demo-data", "../../testdata/demo"}, &out, io.Discard)
	}()
	deadline := time.After(180 * time.Second)
	for !strings.Contains(out.String(), "Try it") {
		select {
		case err := <-done:
			t.Fatalf("demo ended: %v\n%s", err, out.String())
		case <-deadline:
			t.Fatalf("demo did not finish loading:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("demo: %v", err)
	}
	if n := strings.Count(out.String(), " 0 with issues"); n != 4 {
		t.Errorf("demo loaded %d native files without issues, want 4:\n%s", n, out.String())
	}
	bundles, _ := filepath.Glob("../../testdata/demo/synthea/*.json")
	bundles = append(bundles, "consents.json#1", "consents.json#2", "consents.json#3")
	for _, b := range bundles {
		said := false
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.Contains(line, filepath.Base(b)+" ") && strings.HasPrefix(line, "  loaded ") {
				said = true
			}
		}
		if !said {
			t.Errorf("demo did not load %s:\n%s", b, out.String())
		}
	}
	if strings.Contains(out.String(), "REFUSED") {
		t.Errorf("the hub refused demo data:\n%s", out.String())
	}
	// The story: detection, the GP's pathway with a rupture alert, the
	// mutual's aggregate, the refused pricing request, the auditor.
	for _, want := range []string{
		"as of 2026-10-01:\n  HTTP 200: ",
		"rupture alerts: ",
		"Pas de consultation de médecin généraliste",
		"the same pathway asked by the mutual's prevention team: HTTP 403",
		"aggregated screening report only (cells under 10 suppressed):\n  HTTP 200: MeasureReport",
		"to price contracts:\n  HTTP 403: access denied by policy: matrix-never",
		"hash chain verified: true",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo story lacks %q:\n%s", want, out.String())
		}
	}
	if len(bundles) != 6 {
		t.Errorf("testdata/demo has %d FHIR bundles, want 3 Synthea bundles and 3 consents", len(bundles))
	}
}

// TestIngestCommand uploads a demo file with `parcours ingest` to a dev hub
// on :0, then a file with a bad row.
func TestIngestCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	data := t.TempDir()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, serveConfig{Addr: "127.0.0.1:0", Data: data, MaxBody: 1 << 24, Dev: true}, io.Discard, io.Discard, ready)
	}()
	addr := <-ready
	var tokens map[string]string
	b, _ := os.ReadFile(filepath.Join(data, "dev-tokens.json"))
	json.Unmarshal(b, &tokens)
	var out bytes.Buffer
	args := []string{"ingest", "--url", "http://" + addr + "/fhir", "--token", tokens["hospital-it"], "--source", "hospital-stays", "../../testdata/native/hospital-stays.csv"}
	if err := run(ctx, args, &out, io.Discard); err != nil || !strings.Contains(out.String(), "0 with issues") {
		t.Fatalf("ingest: %v\n%s", err, out.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.csv")
	lines := strings.SplitN(string(must(os.ReadFile("../../testdata/native/hospital-stays.csv"))), "\n", 3)
	os.WriteFile(bad, []byte(lines[0]+"\n"+strings.Replace(lines[1], ";", ";;", 1)+"\n"), 0o600)
	out.Reset()
	args[len(args)-1] = bad
	if err := run(ctx, args, &out, io.Discard); err == nil || !strings.Contains(out.String(), "line 2") {
		t.Errorf("bad file: %v\n%s", err, out.String())
	}
	// Flags after FILE, as the top-level help writes them (once a usage
	// error: flag parsing stopped at FILE).
	all := strings.Split(string(must(os.ReadFile("../../testdata/native/hospital-stays.csv"))), "\n")
	mixed := filepath.Join(t.TempDir(), "mixed.csv")
	os.WriteFile(mixed, []byte(all[0]+"\n"+strings.Replace(all[1], ";", ";;", 1)+"\n"+all[3]+"\n"), 0o600)
	out.Reset()
	late := append(slices.Clone(args[:len(args)-1]), mixed, "--mode", "partial")
	if err := run(ctx, late, &out, io.Discard); err != nil || !strings.Contains(out.String(), "line 2") || !strings.Contains(out.String(), "1 stored") {
		t.Errorf("flags after FILE: %v\n%s", err, out.String())
	}
	cancel()
	<-done
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestProgressLine: the upload's progress shows the share sent, then,
// once the hub has the whole file, that it is checking and storing it
// (the answer comes only after), rather than "100% sent" for minutes.
func TestProgressLine(t *testing.T) {
	for _, tt := range []struct {
		sent, size int64
		working    time.Duration
		done       bool
		want       string
	}{
		{512 << 10, 2 << 20, 0, false, "f.csv: 25% sent (512.0 KiB of 2.0 MiB)"},
		{2 << 20, 2 << 20, 3400 * time.Millisecond, true, "f.csv: sent (2.0 MiB); the hub is checking and storing it: 3s"},
		{300, 0, time.Second, false, "f.csv: sent (300 B); the hub is checking and storing it: 1s"},
	} {
		if got := strings.TrimSpace(progressLine("f.csv", tt.sent, tt.size, tt.working, tt.done)); got != tt.want {
			t.Errorf("progressLine(%d of %d) = %q, want %q", tt.sent, tt.size, got, tt.want)
		}
	}
}
