package suite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

const (
	fhirJSON  = "application/fhir+json"
	userAgent = "parcours-conformance"
	maxBody   = 64 << 20 // bytes of a response body read
	maxPages  = 20       // next links followed by one paged read
)

// response is one HTTP answer, read to the end.
type response struct {
	status int
	header http.Header
	body   []byte
	res    map[string]any // the body decoded, when it is a JSON object
}

// do sends one request to the server. target is a path relative to the FHIR
// base ("Patient/1", "Patient?identifier=…") or an absolute URL (a next
// link). body is nil, raw bytes, or a value to encode as JSON. header holds
// pairs (name, value) that replace the defaults; an empty value removes one.
// A JSON object answer carrying a resourceType is validated.
func (r *runner) do(ctx context.Context, method, target string, body any, header ...string) (*response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("encoding the request body: %w", err)
		}
		rd = bytes.NewReader(enc)
	}
	u := target
	switch {
	case target == "":
		u = r.base
	case !strings.HasPrefix(target, "http://") && !strings.HasPrefix(target, "https://"):
		u = r.base + "/" + target
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", fhirJSON)
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", fhirJSON)
	}
	if r.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.cfg.Token)
	}
	if r.cfg.Purpose != "" {
		req.Header.Set("X-Purpose-Of-Use", r.cfg.Purpose)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %s: reading the body: %w", method, target, resp.Status, err)
	}
	x := &response{status: resp.StatusCode, header: resp.Header, body: b}
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(t))
		dec.UseNumber()
		var m map[string]any
		if dec.Decode(&m) == nil {
			x.res = m
			if _, ok := m["resourceType"].(string); ok {
				r.validate(m)
			}
		}
	}
	return x, nil
}

// brief describes an answer for a failure detail: status, resource type and
// the first OperationOutcome issue, or the start of a non-JSON body.
func (x *response) brief() string {
	s := strconv.Itoa(x.status)
	switch {
	case x.res != nil:
		if t := str(x.res, "resourceType"); t != "" {
			s += " " + t
		}
		if d := issueText(x.res); d != "" {
			s += " (" + clip(d, 120) + ")"
		}
	case len(x.body) > 0:
		s += " " + strconv.Quote(clip(string(x.body), 80))
	}
	return s
}

// is reports whether the status is one of codes.
func (x *response) is(codes ...int) bool { return slices.Contains(codes, x.status) }

// want returns nil when the status is one of codes, else an error naming
// what came back and what was wanted; what prefixes it (the request made).
func (x *response) want(what string, codes ...int) error {
	if x.is(codes...) {
		return nil
	}
	want := make([]string, len(codes))
	for i, c := range codes {
		want[i] = strconv.Itoa(c)
	}
	return fmt.Errorf("%s: got %s, want %s", what, x.brief(), strings.Join(want, " or "))
}

// isOutcome reports whether the body is a JSON OperationOutcome with at
// least one issue carrying a severity and a code (whatever the Content-Type
// says: a server asked for XML may answer its error in JSON).
func (x *response) isOutcome() bool {
	if str(x.res, "resourceType") != "OperationOutcome" {
		return false
	}
	for _, is := range list(x.res, "issue") {
		if str(is, "severity") != "" && str(is, "code") != "" {
			return true
		}
	}
	return false
}

// outcome returns nil when the body is an OperationOutcome (isOutcome),
// else an error naming the status and what the body was instead; what
// prefixes it (the request made). R4 http.html: a server SHOULD return an
// OperationOutcome with an error status.
func (x *response) outcome(what string) error {
	if x.isOutcome() {
		return nil
	}
	return fmt.Errorf("%s: answered %d, but the body is not an OperationOutcome (%s)", what, x.status, x.notOutcome())
}

// notOutcome says what a body that is not an OperationOutcome is.
func (x *response) notOutcome() string {
	ct := x.header.Get("Content-Type")
	if ct == "" {
		ct = "no Content-Type"
	}
	switch t := str(x.res, "resourceType"); {
	case len(bytes.TrimSpace(x.body)) == 0:
		return "empty body, " + ct
	case t == "OperationOutcome":
		return "no issue with a severity and a code"
	case t != "":
		return "a " + t
	case x.res != nil:
		return "a JSON object without a resourceType"
	}
	return fmt.Sprintf("%s %s", ct, strconv.Quote(clip(string(x.body), 80)))
}

// wantOutcome is want followed by outcome: the status is one of codes and
// the body an OperationOutcome.
func (x *response) wantOutcome(what string, codes ...int) error {
	if err := x.want(what, codes...); err != nil {
		return err
	}
	return x.outcome(what)
}

// version is the answer's version id: meta.versionId of the body, else the
// ETag, else the _history part of the Location.
func (x *response) version() string {
	if v := str(x.res, "meta", "versionId"); v != "" {
		return v
	}
	if v := etagVersion(x.header.Get("ETag")); v != "" {
		return v
	}
	_, _, v := parseRef(x.header.Get("Location"))
	return v
}

// issueText is the first issue's diagnostics, details text or code.
func issueText(res map[string]any) string {
	if str(res, "resourceType") != "OperationOutcome" {
		return ""
	}
	is := obj(at(res, "issue", 0))
	return firstNonEmpty(str(is, "diagnostics"), str(is, "details", "text"), str(is, "code"))
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// etagVersion returns x of W/"x" (or "x").
func etagVersion(etag string) string {
	etag = strings.TrimPrefix(strings.TrimSpace(etag), "W/")
	return strings.Trim(etag, `"`)
}

// parseRef splits a Location, fullUrl or reference
// ("[base/]Type/id[/_history/vid]") into its type, id and version.
func parseRef(ref string) (typ, id, vid string) {
	if i := strings.IndexAny(ref, "?#"); i >= 0 {
		ref = ref[:i]
	}
	parts := strings.Split(strings.TrimRight(ref, "/"), "/")
	if n := len(parts); n >= 4 && parts[n-2] == "_history" {
		vid = parts[n-1]
		parts = parts[:n-2]
	}
	if n := len(parts); n >= 2 {
		typ, id = parts[n-2], parts[n-1]
	}
	return typ, id, vid
}

// query builds "path?k=v&…" from pairs, in order.
func query(path string, pairs ...string) string {
	var b strings.Builder
	b.WriteString(path)
	for i := 0; i+1 < len(pairs); i += 2 {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(pairs[i]) + "=" + url.QueryEscape(pairs[i+1]))
	}
	return b.String()
}

// at walks a decoded JSON value by object keys (string) and array indexes
// (int); it returns nil where the path does not exist.
func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k < 0 || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

// str is the string at path, or "" (a JSON number is returned as its text).
func str(v any, path ...any) string {
	switch s := at(v, path...).(type) {
	case string:
		return s
	case json.Number:
		return s.String()
	}
	return ""
}

func list(v any, path ...any) []any { a, _ := at(v, path...).([]any); return a }

func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }

// label names a resource for a report: "Patient/123" or "Bundle".
func label(res map[string]any) string {
	t := str(res, "resourceType")
	if id := str(res, "id"); id != "" {
		return t + "/" + id
	}
	return t
}

// clip cuts s to n bytes (on a rune boundary) with runs of white space
// folded, marking a cut with "…".
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8Start(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// bundlePage is one page of a search or history Bundle.
type bundlePage struct {
	res      map[string]any
	entries  []map[string]any
	next     string
	resource []map[string]any // entry.resource of each entry, nil when absent
}

func pageOf(res map[string]any) bundlePage {
	p := bundlePage{res: res}
	for _, e := range list(res, "entry") {
		m := obj(e)
		p.entries = append(p.entries, m)
		p.resource = append(p.resource, obj(m["resource"]))
	}
	for _, l := range list(res, "link") {
		if str(l, "relation") == "next" {
			p.next = str(l, "url")
		}
	}
	return p
}

// errMorePages is readBundle's error when a next link remains after limit
// pages.
var errMorePages = errors.New("more pages")

// readBundle GETs target and follows its next links for at most limit pages,
// returning every page. Each page must answer 200 with a Bundle of type typ.
func (r *runner) readBundle(ctx context.Context, target, typ string, limit int) ([]bundlePage, error) {
	var pages []bundlePage
	for target != "" {
		if len(pages) == limit {
			return pages, fmt.Errorf("%w: still a next link after %d pages (a loop, or the page size is ignored)", errMorePages, limit)
		}
		x, err := r.do(ctx, http.MethodGet, target, nil)
		if err != nil {
			return pages, err
		}
		what := "GET " + clip(target, 120)
		if len(pages) > 0 {
			what = fmt.Sprintf("page %d (next link)", len(pages)+1)
		}
		if err := x.want(what, http.StatusOK); err != nil {
			return pages, err
		}
		if got := str(x.res, "resourceType") + "/" + str(x.res, "type"); got != "Bundle/"+typ {
			return pages, fmt.Errorf("%s: got %s, want a Bundle of type %s", what, got, typ)
		}
		p := pageOf(x.res)
		pages = append(pages, p)
		if target, err = r.link(p.next); err != nil {
			return pages, fmt.Errorf("page %d: %w", len(pages), err)
		}
	}
	return pages, nil
}

// link resolves a Bundle link against the FHIR base and refuses one on
// another server: the request would carry the token there.
func (r *runner) link(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	base, err := url.Parse(r.base + "/")
	if err != nil {
		return "", err
	}
	u, err := base.Parse(s)
	if err != nil {
		return "", fmt.Errorf("next link %q: %w", clip(s, 100), err)
	}
	if u.Scheme != base.Scheme || u.Host != base.Host {
		return "", fmt.Errorf("next link %q is not on the server at %s (not followed)", clip(s, 100), base.Host)
	}
	return u.String(), nil
}

// searchResult is what a paged search returned.
type searchResult struct {
	pages    []bundlePage
	matches  []string // ids of the resources of type typ with search mode match (or no mode)
	included []string // "Type/id" of the entries with search mode include
}

// search runs a search and gathers every page; typ is the searched type.
func (r *runner) search(ctx context.Context, typ string, pairs ...string) (searchResult, error) {
	var sr searchResult
	var err error
	sr.pages, err = r.readBundle(ctx, query(typ, pairs...), "searchset", maxPages)
	for _, p := range sr.pages {
		for i, e := range p.entries {
			res := p.resource[i]
			switch mode := str(e, "search", "mode"); {
			case res == nil || mode == "outcome":
			case mode == "include" || str(res, "resourceType") != typ:
				sr.included = append(sr.included, label(res))
			default:
				sr.matches = append(sr.matches, str(res, "id"))
			}
		}
	}
	return sr, err
}
