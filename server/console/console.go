package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

// Prefix is the path the console is served under.
const Prefix = "/audit/"

//go:embed static
var static embed.FS

// asset is one embedded file with its headers computed once.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// assets are the files of the page by name under Prefix ("" is the page).
var assets = func() map[string]asset {
	types := map[string]string{
		"index.html": "text/html; charset=utf-8",
		"app.js":     "text/javascript; charset=utf-8",
		"style.css":  "text/css; charset=utf-8",
	}
	m := map[string]asset{}
	for name, ct := range types {
		b, err := static.ReadFile("static/" + name)
		if err != nil {
			panic("console: embedded file missing: " + name) // a build error, not a runtime one
		}
		sum := sha256.Sum256(b)
		m[name] = asset{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	m[""] = m["index.html"]
	return m
}()

// csp allows the page its own files and same-origin API calls only: no
// inline script, no third party, no framing. The bearer token lives in
// sessionStorage, so script injection is what this policy guards against.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the console: GET or HEAD of Prefix (the page) and of its
// assets; /audit is redirected to Prefix; anything else under Prefix is 404.
// It expects the full request path (mount it on /audit/* without
// stripping the prefix).
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	a, found := assets[name]
	if !ok || !found {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}
