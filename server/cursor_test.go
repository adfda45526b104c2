package server

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestCursorsSealed: the _cursor of paging links holds no id and no sort
// value in any readable form (found in review: a researcher read real ids
// and INS from base64 JSON cursors with _sort=identifier); following the
// links still pages; a cursor written by hand, one of another kind
// (history for search), of another search or of another caller is
// refused.
func TestCursorsSealed(t *testing.T) {
	h := newSecureHub(t)
	var ids []string
	for _, family := range []string{"Alpha", "Bravo", "Charlie"} {
		ids = append(ids, seedHospital(t, h, family))
	}
	as := func(path string) reply {
		t.Helper()
		return h.as("hospital-clinician", "TREAT", http.MethodGet, path, nil)
	}
	cursorOf := func(r reply) string {
		t.Helper()
		for _, l := range anySlice(r.body["link"]) {
			if str(l, "relation") == "next" {
				u, err := url.Parse(str(l, "url"))
				if err != nil {
					t.Fatal(err)
				}
				return u.Query().Get("_cursor")
			}
		}
		return ""
	}
	seen := map[string]bool{}
	path := "/Patient?_sort=family&_count=1"
	var cursors []string
	for page := 0; page < 3; page++ {
		r := as(path)
		if r.status != http.StatusOK || len(anySlice(r.body["entry"])) != 1 {
			t.Fatalf("page %d: %d %s", page, r.status, r.raw)
		}
		seen[str(r.body, "entry", 0, "resource", "id")] = true
		c := cursorOf(r)
		if page < 2 && c == "" {
			t.Fatalf("page %d: no next link", page)
		}
		if c != "" {
			cursors = append(cursors, c)
			path = "/Patient?_sort=family&_count=1&_cursor=" + url.QueryEscape(c)
		}
	}
	if len(seen) != 3 {
		t.Errorf("three pages showed %d distinct patients, want 3", len(seen))
	}
	hist := as("/Patient/_history?_count=1")
	cursors = append(cursors, cursorOf(hist))
	for _, c := range cursors {
		raw, _ := base64.RawURLEncoding.DecodeString(c)
		for _, secret := range append(ids, "alpha", "bravo", "charlie", "Alpha", "Bravo", "Charlie") {
			if strings.Contains(c, secret) || strings.Contains(string(raw), secret) {
				t.Errorf("cursor %q shows %q", c, secret)
			}
		}
		if json.Valid(raw) {
			t.Errorf("cursor %q is readable JSON", c)
		}
	}
	forged, _ := json.Marshal(map[string]any{"d": "a", "t": "Patient", "i": ids[0], "k": []string{"alpha"}})
	for name, p := range map[string]string{
		"hand-written search cursor":  "/Patient?_sort=family&_count=1&_cursor=" + base64.RawURLEncoding.EncodeToString(forged),
		"history cursor for a search": "/Patient?_sort=family&_count=1&_cursor=" + url.QueryEscape(cursorOf(hist)),
		"search cursor for a history": "/Patient/_history?_count=1&_cursor=" + url.QueryEscape(cursors[0]),
		"a change-log number":         "/Patient/_history?_count=1&_cursor=12",
		"a cursor of another search":  "/Patient?_sort=-family&_count=1&_cursor=" + url.QueryEscape(cursors[0]),
	} {
		if r := as(p); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", name, r.status)
		}
	}
	// A cursor is the caller's: another caller's next link is refused.
	other := h.as("hospital-it", "HOPERAT", http.MethodGet, "/Patient?_sort=family&_count=1&_cursor="+url.QueryEscape(cursors[0]), nil)
	if other.status != http.StatusBadRequest {
		t.Errorf("another caller's cursor: %d, want 400", other.status)
	}
}
