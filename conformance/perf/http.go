package perf

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// server is an in-process HTTP server on 127.0.0.1.
type server struct {
	URL string
	hs  *http.Server
}

// listen serves h on 127.0.0.1 on a free port.
func listen(h http.Handler) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("perf: listen: %w", err)
	}
	s := &server{URL: "http://" + ln.Addr().String(), hs: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	go s.hs.Serve(ln)
	return s, nil
}

func (s *server) Close() error { return s.hs.Close() }

// response is what do keeps of an answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// client is for the few requests around the measurements (never the
// measurements themselves, which are conformance/load's).
// Its connections are kept for up to 64 concurrent requests (the default
// keeps two).
var client = &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{
	Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second,
}}

// do sends one request as who and reads the whole answer.
func do(ctx context.Context, method, url string, who Identity, contentType string, body []byte) (response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Accept", "application/fhir+json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if who.Token != "" {
		req.Header.Set("Authorization", "Bearer "+who.Token)
	}
	if who.Purpose != "" {
		req.Header.Set("X-Purpose-Of-Use", who.Purpose)
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %s: reading body: %w", method, req.URL.Path, resp.Status, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// clip returns the start of b on one line.
func clip(b []byte) string {
	if len(b) > 300 {
		b = b[:300]
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

// traceSink is an OTLP/HTTP traces endpoint that counts and drops what it
// receives: the traced hub exports to it, so that tracing costs what an
// export costs (serialisation and a local HTTP round trip) and nothing of
// a collector's.
type traceSink struct {
	*server
	mu             sync.Mutex
	exports, bytes int64
}

func newTraceSink() (*traceSink, error) {
	t := &traceSink{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		t.mu.Lock()
		t.exports++
		t.bytes += n
		t.mu.Unlock()
		// An empty ExportTraceServiceResponse: full success.
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})
	s, err := listen(mux)
	if err != nil {
		return nil, err
	}
	t.server = s
	return t, nil
}

// Received returns the number of exports and bytes received so far.
func (t *traceSink) Received() (exports, bytes int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.exports, t.bytes
}

// filesystem names the device and file system holding dir, from
// /proc/self/mounts (Linux); "unknown" elsewhere.
func filesystem(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "unknown"
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "unknown"
	}
	best, desc := "", "unknown"
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		mnt := f[1]
		if (abs == mnt || strings.HasPrefix(abs, strings.TrimSuffix(mnt, "/")+"/")) && len(mnt) >= len(best) {
			best, desc = mnt, fmt.Sprintf("%s (%s) mounted on %s", f[0], f[2], mnt)
		}
	}
	return desc
}
