package server

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// corpus is the shared test corpus beside the repository (CI has it there).
const corpus = "../../shared/corpus"

// hub is a real Parcours server on 127.0.0.1:0 over a fresh bbolt file.
type hub struct {
	t   testing.TB
	s   *Server
	srv *httptest.Server
	url string // FHIR base
}

func newHub(t testing.TB) *hub {
	t.Helper()
	// The REST semantics are tested without security; authz_test.go tests it.
	s, err := New(Config{DataDir: t.TempDir(), Insecure: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		srv.Close()
		s.Close()
	})
	return &hub{t: t, s: s, srv: srv, url: srv.URL + "/fhir"}
}

// reply is a decoded HTTP answer.
type reply struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// do sends a request; body may be nil, []byte, string or a JSON-able value.
func (h *hub) do(method, path string, body any, headers ...string) reply {
	h.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = bytes.NewReader([]byte(b))
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, h.url+path, r)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	out := reply{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			h.t.Fatalf("%s %s: answer is not JSON: %v: %.200s", method, path, err, raw)
		}
	}
	return out
}

// corpusFiles lists files of the shared corpus, skipping when it is absent.
func corpusFiles(t testing.TB, pattern string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(corpus, pattern))
	if len(files) == 0 {
		if _, err := os.Stat(corpus); err != nil {
			t.Skipf("shared corpus absent at %s (CI provides it beside the repository): %v", corpus, err)
		}
		t.Fatalf("no corpus files match %s", pattern)
	}
	return files
}
