package perf

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/parcours-sante/parcours/conformance/load"
)

// opaPackage is the main package of the opa command, built at the version
// the module's go.mod requires.
const opaPackage = "github.com/open-policy-agent/opa"

// DecisionPath is the REST path of the hub's decision on an OPA server.
const DecisionPath = "/v1/data/parcours/authz/decision"

// decisions measures the decision of the audited GET three ways: in
// process memoised (what a GET pays), in process evaluated (the memo
// missed), and over REST by an OPA sidecar loaded with the same policies.
func (r *runner) decisions(ctx context.Context) error {
	if r.input == nil {
		for _, key := range []string{RowDecideMemo, RowDecideEval, RowOPA} {
			r.add(Row{Key: key, Name: decisionNames[key], Skipped: "no policy input: the audited GET was not measured"})
		}
		return nil
	}
	var input map[string]any
	if err := json.Unmarshal(r.input, &input); err != nil {
		return fmt.Errorf("perf: the recorded policy input: %w", err)
	}
	if r.cfg.Decide == nil {
		r.add(Row{Key: RowDecideMemo, Name: decisionNames[RowDecideMemo], Skipped: "no in-process engine given (Config.Decide)"})
		r.add(Row{Key: RowDecideEval, Name: decisionNames[RowDecideEval], Skipped: "no in-process engine given (Config.Decide)"})
	} else {
		r.logf("policy decision in process")
		r.add(r.decideRow(ctx, RowDecideMemo, func(int) any { return input }))
		// A distinct "now" per call (one second apart) misses the memo.
		base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		r.add(r.decideRow(ctx, RowDecideEval, func(n int) any {
			in := make(map[string]any, len(input))
			for k, v := range input {
				in[k] = v
			}
			in["now"] = base.Add(time.Duration(n) * time.Second).Format(time.RFC3339)
			return in
		}))
	}
	if r.cfg.SkipOPA {
		r.add(Row{Key: RowOPA, Name: decisionNames[RowOPA], Skipped: "--skip-opa"})
		return nil
	}
	r.logf("OPA sidecar: build and start")
	r.add(r.opaRow(ctx))
	return nil
}

var decisionNames = map[string]string{
	RowDecideMemo: "policy decision in process, memoised (as a GET)",
	RowDecideEval: "policy decision in process, evaluated (memo missed)",
	RowOPA:        "OPA sidecar: POST " + DecisionPath,
}

func (r *runner) decideRow(ctx context.Context, key string, input func(n int) any) Row {
	var wrong atomic.Int64
	rate, p50, p99, calls, errs := measureFunc(ctx, r.cfg.Conns, r.cfg.Warmup, r.cfg.Duration, func(n int) error {
		allow, err := r.cfg.Decide(ctx, input(n))
		if err == nil && allow != r.allow {
			wrong.Add(1)
			return errors.New("not the hub's decision")
		}
		return err
	})
	row := Row{Key: key, Name: decisionNames[key], Unit: "decisions/s", Rate: rate, P50: p50, P99: p99, Requests: calls, Errors: errs}
	if wrong.Load() > 0 {
		row.Note = "some decisions differ from the hub's"
	}
	return row
}

// opaRow builds the opa command, starts it as a server loaded with the
// hub's policies and drives POST DecisionPath with the recorded input.
func (r *runner) opaRow(ctx context.Context) Row {
	row := Row{Key: RowOPA, Name: decisionNames[RowOPA]}
	if r.cfg.Policies == nil {
		row.Skipped = "no policies given (Config.Policies)"
		return row
	}
	dir, err := os.MkdirTemp("", "parcours-perf-opa-")
	if err != nil {
		row.Skipped = err.Error()
		return row
	}
	defer os.RemoveAll(dir)
	bin, version, err := buildOPA(ctx, r.cfg.ModuleDir, dir)
	if err != nil {
		row.Skipped = "OPA not built: " + err.Error()
		return row
	}
	policyDir := filepath.Join(dir, "policies")
	if err := copyPolicies(r.cfg.Policies, policyDir); err != nil {
		row.Skipped = err.Error()
		return row
	}
	url, stop, err := startOPA(ctx, bin, policyDir)
	if err != nil {
		row.Skipped = "OPA not started: " + err.Error()
		return row
	}
	defer stop()
	body, _ := json.Marshal(map[string]json.RawMessage{"input": r.input})
	// Same question, same answer: the sidecar must decide as the hub did.
	resp, err := do(ctx, http.MethodPost, url+DecisionPath, Identity{}, "application/json", body)
	var out struct {
		Result struct {
			Allow *bool `json:"allow"`
		} `json:"result"`
	}
	if err == nil && resp.status == http.StatusOK {
		err = json.Unmarshal(resp.body, &out)
	}
	switch {
	case err != nil:
		row.Skipped = "OPA sidecar: " + err.Error()
		return row
	case resp.status != http.StatusOK || out.Result.Allow == nil || *out.Result.Allow != r.allow:
		row.Skipped = fmt.Sprintf("the sidecar does not decide as the hub (status %d): %s", resp.status, clip(resp.body))
		return row
	}
	r.rep.Peers = append(r.rep.Peers, fmt.Sprintf("OPA %s (opa run --server, built from %s at go.mod's version), the hub's policies, decision logs off", version, opaPackage))
	row, _ = r.drive(ctx, RowOPA, row.Name, load.Config{
		URL:      url + DecisionPath,
		Requests: []load.Request{{Method: http.MethodPost, Body: body, Header: http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}}},
	})
	row.Unit = "decisions/s"
	if row.Note == "" {
		row.Note = fmt.Sprintf("same input as the hub's GET (%d bytes), same decision", len(r.input))
	}
	return row
}

// buildOPA builds the opa command of the module in moduleDir into dir and
// returns its path and version.
func buildOPA(ctx context.Context, moduleDir, dir string) (bin, version string, err error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", "", errors.New("no go command on PATH")
	}
	bin = filepath.Join(dir, "opa")
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, opaPackage)
	cmd.Dir = moduleDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("go build %s: %v: %s", opaPackage, err, lastLines(out, 3))
	}
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		return "", "", fmt.Errorf("opa version: %w", err)
	}
	version = "unknown version"
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "Version: "); ok {
			version = strings.TrimSpace(v)
		}
	}
	return bin, version, nil
}

// copyPolicies writes the policy files (no tests) of fsys into dir.
func copyPolicies(fsys fs.FS, dir string) error {
	n := 0
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(p, "_test.rego") || (path.Ext(p) != ".rego" && path.Ext(p) != ".json") {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		n++
		return os.WriteFile(dst, b, 0o600)
	})
	if err == nil && n == 0 {
		err = errors.New("no policy files")
	}
	if err != nil {
		return fmt.Errorf("perf: policies for OPA: %w", err)
	}
	return nil
}

// startOPA runs `opa run --server` on a free port of 127.0.0.1 and waits
// until it is healthy.
func startOPA(ctx context.Context, bin, policyDir string) (url string, stop func(), err error) {
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "run", "--server", "--addr", addr, "--log-level", "error", "--disable-telemetry", policyDir)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
	url = "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := do(ctx, http.MethodGet, url+"/health", Identity{}, "", nil)
		if err == nil && resp.status == http.StatusOK {
			return url, stop, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return "", nil, fmt.Errorf("not healthy within 30s: %v %s", err, lastLines(stderr.Bytes(), 3))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freePort returns a port of 127.0.0.1 free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// lastLines returns the last n non-empty lines of out, joined.
func lastLines(out []byte, n int) string {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}
