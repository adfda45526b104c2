package perf

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/parcours-sante/parcours/conformance/load"
)

// medplumServer is the Node HTTP wrapper of @medplum/fhir-router: its
// FhirRouter over a MemoryRepository, the FHIR R4 API under /fhir/R4.
//
//go:embed medplum.mjs
var medplumServer []byte

// medplum measures GET Patient/{id} on Medplum's FHIR router, installed
// with npm into a temporary directory.
func (r *runner) medplum(ctx context.Context) error {
	const name = "Medplum fhir-router GET Patient/{id}, MemoryRepository"
	row := Row{Key: RowMedplum, Name: name}
	if r.cfg.SkipNode {
		row.Skipped = "--skip-node"
		r.add(row)
		return nil
	}
	r.logf("Medplum: npm install @medplum/fhir-router@%s", r.cfg.MedplumVersion)
	m, err := startMedplum(ctx, r.cfg.MedplumVersion)
	if err != nil {
		row.Skipped = "Medplum: " + err.Error()
		r.add(row)
		return nil
	}
	defer m.stop()
	r.rep.Peers = append(r.rep.Peers, m.describe)
	row, _ = r.drive(ctx, RowMedplum, name, load.Config{URL: m.url, Scenario: load.ScenarioRead})
	r.add(row)
	return nil
}

// medplumPeer is a running wrapper.
type medplumPeer struct {
	url      string // FHIR base: http://127.0.0.1:PORT/fhir/R4
	describe string // packages and Node versions
	stop     func()
}

func startMedplum(ctx context.Context, version string) (*medplumPeer, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, errors.New("no node on PATH")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return nil, errors.New("no npm on PATH")
	}
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("node --version: %w", err)
	}
	nodeVersion := strings.TrimSpace(string(out))
	major, _ := strconv.Atoi(strings.TrimPrefix(strings.Split(nodeVersion, ".")[0], "v"))

	dir, err := os.MkdirTemp("", "parcours-perf-medplum-")
	if err != nil {
		return nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"private": true, "type": "module"}`+"\n"), 0o600); err != nil {
		cleanup()
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "server.mjs"), medplumServer, 0o600); err != nil {
		cleanup()
		return nil, err
	}
	ictx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	install := exec.CommandContext(ictx, npm, "install", "--no-audit", "--no-fund", "--save-exact", "--loglevel=error",
		"@medplum/fhir-router@"+version, "@medplum/core@"+version)
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		cleanup()
		return nil, fmt.Errorf("npm install: %v: %s", err, lastLines(out, 2))
	}
	router, core := installedVersion(dir, "fhir-router"), installedVersion(dir, "core")

	// The packages want Node 22 or later for its global WebSocket, which
	// older Nodes have behind a flag.
	args := []string{"server.mjs"}
	flags := ""
	if major > 0 && major < 22 {
		args = append([]string{"--experimental-websocket"}, args...)
		flags = " with --experimental-websocket"
	}
	cmd := exec.Command(node, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cleanup()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cleanup()
		return nil, err
	}
	stop := func() {
		cmd.Process.Kill()
		cmd.Wait()
		cleanup()
	}
	type ready struct {
		Addr    string `json:"addr"`
		Patient string `json:"patient"`
	}
	got := make(chan ready, 1)
	go func() {
		var rd ready
		if line, err := bufio.NewReader(stdout).ReadBytes('\n'); err == nil {
			_ = json.Unmarshal(line, &rd)
		}
		got <- rd
	}()
	var rd ready
	select {
	case rd = <-got:
	case <-time.After(60 * time.Second):
	case <-ctx.Done():
	}
	if rd.Addr == "" {
		stop()
		return nil, fmt.Errorf("the wrapper did not start: %s", lastLines(stderr.Bytes(), 2))
	}
	m := &medplumPeer{
		url:      "http://" + rd.Addr + "/fhir/R4",
		describe: fmt.Sprintf("Medplum @medplum/fhir-router %s, @medplum/core %s (npm, exact versions), MemoryRepository, on Node %s%s", router, core, nodeVersion, flags),
		stop:     stop,
	}
	resp, err := do(ctx, http.MethodGet, m.url+"/Patient/"+rd.Patient, Identity{}, "", nil)
	if err != nil || resp.status != http.StatusOK {
		stop()
		return nil, fmt.Errorf("GET the start-up Patient: %v (status %d) %s", err, resp.status, clip(resp.body))
	}
	return m, nil
}

// installedVersion is the version of @medplum/<pkg> npm installed in dir.
func installedVersion(dir, pkg string) string {
	var p struct{ Version string }
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", "@medplum", pkg, "package.json"))
	if err != nil || json.Unmarshal(b, &p) != nil || p.Version == "" {
		return "unknown"
	}
	return p.Version
}
