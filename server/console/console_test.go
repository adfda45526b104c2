package console_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/parcours-sante/parcours/server/console"
)

func get(t *testing.T, h http.Handler, method, path string, headers ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHandler(t *testing.T) {
	h := console.Handler()
	tests := []struct {
		name, method, path string
		status             int
		contentType        string // prefix
		contains           string
		location           string
	}{
		{"page", http.MethodGet, "/audit/", 200, "text/html; charset=utf-8", `id="decisions"`, ""},
		{"page by name", http.MethodGet, "/audit/index.html", 200, "text/html; charset=utf-8", "<title>Parcours", ""},
		{"script", http.MethodGet, "/audit/app.js", 200, "text/javascript; charset=utf-8", "X-Purpose-Of-Use", ""},
		{"style", http.MethodGet, "/audit/style.css", 200, "text/css; charset=utf-8", ".outcome.deny", ""},
		{"head", http.MethodHead, "/audit/", 200, "text/html; charset=utf-8", "", ""},
		{"no slash", http.MethodGet, "/audit", http.StatusMovedPermanently, "", "", "/audit/"},
		{"unknown asset", http.MethodGet, "/audit/secret.txt", 404, "", "", ""},
		{"embedded directory", http.MethodGet, "/audit/static/app.js", 404, "", "", ""},
		{"traversal", http.MethodGet, "/audit/../console.go", 404, "", "", ""},
		{"outside the prefix", http.MethodGet, "/fhir/metadata", 404, "", "", ""},
		{"post", http.MethodPost, "/audit/", http.StatusMethodNotAllowed, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := get(t, h, tt.method, tt.path)
			b := body(t, resp)
			if resp.StatusCode != tt.status {
				t.Fatalf("%s %s: status %d, want %d", tt.method, tt.path, resp.StatusCode, tt.status)
			}
			if ct := resp.Header.Get("Content-Type"); tt.contentType != "" && ct != tt.contentType {
				t.Errorf("Content-Type %q, want %q", ct, tt.contentType)
			}
			if tt.contains != "" && !strings.Contains(b, tt.contains) {
				t.Errorf("body does not contain %q", tt.contains)
			}
			if loc := resp.Header.Get("Location"); loc != tt.location {
				t.Errorf("Location %q, want %q", loc, tt.location)
			}
			if tt.status == 200 {
				for _, k := range []string{"Content-Security-Policy", "X-Content-Type-Options", "ETag"} {
					if resp.Header.Get(k) == "" {
						t.Errorf("no %s header", k)
					}
				}
				if tt.method == http.MethodHead && b != "" {
					t.Errorf("HEAD answered a body of %d bytes", len(b))
				}
			}
		})
	}
}

// TestAssets: everything the page refers to is embedded and served, and
// nothing comes from another origin.
func TestAssets(t *testing.T) {
	h := console.Handler()
	page := body(t, get(t, h, http.MethodGet, "/audit/"))
	refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(page, -1)
	want := map[string]string{"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
	seen := map[string]bool{}
	for _, m := range refs {
		ref := m[1]
		if ref == "data:," {
			continue // the empty favicon
		}
		if strings.Contains(ref, "//") || strings.HasPrefix(ref, "/") {
			t.Errorf("the page refers to %q: only relative, embedded assets are allowed", ref)
			continue
		}
		resp := get(t, h, http.MethodGet, "/audit/"+ref)
		if resp.StatusCode != 200 || body(t, resp) == "" {
			t.Errorf("asset %q: status %d or empty", ref, resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); want[ref] != "" && ct != want[ref] {
			t.Errorf("asset %q: Content-Type %q, want %q", ref, ct, want[ref])
		}
		seen[ref] = true
	}
	for ref := range want {
		if !seen[ref] {
			t.Errorf("the page does not load %s", ref)
		}
	}
	js := body(t, get(t, h, http.MethodGet, "/audit/app.js"))
	if strings.Contains(js, "innerHTML") {
		t.Error("app.js uses innerHTML: hub data must be written as text")
	}
	for _, s := range []string{"http://", "https://"} {
		if strings.Contains(js, s) {
			t.Errorf("app.js mentions %q: the page calls its own origin only", s)
		}
	}
}

func TestConditional(t *testing.T) {
	h := console.Handler()
	first := get(t, h, http.MethodGet, "/audit/app.js")
	etag := first.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if resp := get(t, h, http.MethodGet, "/audit/app.js", "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the current ETag: status %d, want 304", resp.StatusCode)
	}
}

func ExampleHandler() {
	mux := http.NewServeMux()
	mux.Handle(console.Prefix, console.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + console.Prefix)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"))
	// Output: 200 text/html; charset=utf-8
}
