package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/parcours-sante/parcours/server/audit"
	"github.com/parcours-sante/parcours/server/store"
)

// findChromium returns the path of a Chromium or Chrome binary, or "".
func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestAuditConsole drives the auditor console (/audit/) in headless
// Chromium against a real developer-mode hub: real tokens, real policies,
// real decision log. It asserts on what the page shows after clicks and
// typing, never on the page's internals.
func TestAuditConsole(t *testing.T) {
	h := newSecureHub(t)
	auditor := h.token("auditor")

	// The console needs the hub's auditor API and the page itself.
	verify := h.do(http.MethodGet, "/$audit-verify", nil, "Authorization", "Bearer "+auditor, "X-Purpose-Of-Use", "HCOMPL")
	page, err := http.Get(h.srv.URL + "/audit/")
	if err != nil {
		t.Fatal(err)
	}
	page.Body.Close()
	if verify.status == http.StatusNotFound || page.StatusCode == http.StatusNotFound {
		t.Skipf("auditor API not wired yet: GET /fhir/$audit-verify answered %d, GET /audit/ answered %d", verify.status, page.StatusCode)
	}
	if verify.status != http.StatusOK || page.StatusCode != http.StatusOK {
		t.Fatalf("GET /fhir/$audit-verify answered %d (%.300s), GET /audit/ answered %d; want 200 and 200", verify.status, verify.raw, page.StatusCode)
	}
	exe := findChromium()
	if exe == "" {
		t.Skip("no chromium, chromium-browser or google-chrome on PATH: the browser test needs one (.ci/run installs Debian's chromium)")
	}

	// Decisions to look at: allowed reads, a forbidden purpose, a
	// break-the-glass access and a GP denied outside the care team.
	pid := seedHospital(t, h, "Console")
	// More clinician reads than one page (50) holds.
	reads := []string{"/Observation?_count=10"}
	for range 55 {
		reads = append(reads, "/Patient/"+pid)
	}
	for _, path := range reads {
		if r := h.as("hospital-clinician", "TREAT", http.MethodGet, path, nil); r.status != http.StatusOK {
			t.Fatalf("hospital-clinician TREAT GET %s: %d %.300s", path, r.status, r.raw)
		}
	}
	if r := h.as("mutual-claims", "underwriting-pricing", http.MethodGet, "/Observation", nil); r.status != http.StatusForbidden {
		t.Fatalf("mutual-claims underwriting-pricing: %d, want 403", r.status)
	}
	if r := h.as("gp", "BTG", http.MethodGet, "/Patient/"+pid, nil, "X-Break-Glass-Reason", "SAMU: patient unconscious"); r.status != http.StatusOK {
		t.Fatalf("gp break-the-glass read: %d %.300s", r.status, r.raw)
	}
	if r := h.as("gp", "TREAT", http.MethodGet, "/Patient/"+pid, nil); r.status != http.StatusForbidden {
		t.Fatalf("gp TREAT outside the care team: %d, want 403", r.status)
	}
	// The GP then records a consultation: it declares a care relationship.
	enc := map[string]any{"resourceType": "Encounter", "status": "finished",
		"class":   map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
		"subject": map[string]any{"reference": "Patient/" + pid}}
	if r := h.as("gp", "TREAT", http.MethodPost, "/Encounter", enc); r.status != http.StatusCreated {
		t.Fatalf("gp records a consultation: %d %.300s", r.status, r.raw)
	}

	b := newConsoleBrowser(t, exe)
	b.run("open the console",
		chromedp.Navigate(h.srv.URL+"/audit/"),
		chromedp.WaitVisible("#token", chromedp.ByQuery))

	// A token without HCOMPL: the hub refuses, the page says why.
	b.run("sign in as a gp", chromedp.SendKeys("#token", h.token("gp"), chromedp.ByQuery), chromedp.Click("#sign-in", chromedp.ByQuery))
	b.waitLoad("#bg", 1)
	if a := b.text("#alert"); !strings.Contains(a, "403") || !strings.Contains(a, "HCOMPL") {
		t.Errorf("alert after a gp sign-in = %q, want the 403 OperationOutcome diagnostics naming HCOMPL", a)
	}
	b.run("sign out", chromedp.Click("#sign-out", chromedp.ByQuery))

	b.run("sign in as the auditor", chromedp.SendKeys("#token", auditor, chromedp.ByQuery), chromedp.Click("#sign-in", chromedp.ByQuery))
	b.waitLoad("#bg", 2)
	if s := b.text("#signed-in"); !strings.Contains(s, "auditeur-dpo") || !strings.Contains(s, "(auditor)") {
		t.Errorf("signed-in status = %q, want the auditor's sub and actor type", s)
	}

	// Denied decisions only.
	rows := b.search("outcome deny", chromedp.SendKeys("#outcome", "deny", chromedp.ByQuery))
	pricing := false
	for _, r := range rows {
		if r["actor"] == "mutual-claims" && r["purpose"] == "underwriting-pricing" {
			pricing = true
		}
	}
	if bad := rowsUnlike(rows, "outcome", "deny"); len(bad) > 0 {
		t.Errorf("outcome=deny shows %d rows of another outcome, the first: %v", len(bad), bad[0])
	}
	if !pricing {
		t.Errorf("outcome=deny: no mutual-claims underwriting-pricing row in %v", rows)
	}

	// The GP's decisions only.
	b.run("clear the filters", chromedp.Click("#clear", chromedp.ByQuery))
	rows = b.search("actor type gp", chromedp.SendKeys("#actor", "gp", chromedp.ByQuery))
	if len(rows) == 0 {
		t.Fatal("actor type gp: no row")
	}
	if bad := rowsUnlike(rows, "actor", "gp"); len(bad) > 0 {
		t.Errorf("actor type gp shows %d rows of other actor types, the first: %v", len(bad), bad[0])
	}
	btg := -1
	for i, r := range rows {
		if r["interaction"] == "break-glass" && btg < 0 {
			btg = i
		}
	}
	if btg < 0 {
		t.Fatalf("actor type gp: no break-glass row in %v", rows)
	}

	// One decision in full.
	b.run("open the break-glass decision",
		chromedp.Click(fmt.Sprintf("#decision-rows tr:nth-child(%d)", btg+1), chromedp.ByQuery),
		chromedp.WaitVisible("#detail", chromedp.ByQuery))
	if id := b.text("#detail-decision-id"); id != rows[btg]["decision"] || id == "—" || id == "" {
		t.Errorf("detail decision id = %q, want the row's %q", id, rows[btg]["decision"])
	}
	if rev := b.text("#detail-revision"); rev == "—" || rev == "" {
		t.Errorf("detail revision = %q, want the policy revision", rev)
	}
	if raw := b.text("#detail-raw"); !strings.Contains(raw, `"resourceType": "AuditEvent"`) {
		t.Errorf("raw AuditEvent not shown: %.200q", raw)
	}
	// The reasons and legal basis shown are the record's.
	if err := h.s.audit.Flush(); err != nil {
		t.Fatal(err)
	}
	var recorded audit.Result
	h.s.db.View(func(tx *store.Tx) error {
		rec, _ := audit.Find(tx, rows[btg]["decision"])
		recorded, _ = rec.Decision()
		return nil
	})
	if len(recorded.Reasons) == 0 || len(recorded.LegalBasis) == 0 {
		t.Fatalf("the break-glass record has reasons %v and legal basis %v: the scenario does not test their display", recorded.Reasons, recorded.LegalBasis)
	}
	for _, r := range recorded.Reasons {
		if got := b.text("#detail-reasons"); !strings.Contains(got, r) {
			t.Errorf("detail reasons = %q, want the recorded reason %q", got, r)
		}
	}
	for _, l := range recorded.LegalBasis {
		if got := b.text("#detail-legal-basis"); !strings.Contains(got, l) {
			t.Errorf("detail legal basis = %q, want the recorded %q", got, l)
		}
	}
	pseudonym := rows[btg]["patient"]

	// The patient's decisions, by the pseudonym the break-glass row shows.
	b.run("close the detail and clear the filters", chromedp.Click("#detail-close", chromedp.ByQuery), chromedp.Click("#clear", chromedp.ByQuery))
	rows = b.search("patient pseudonym", chromedp.SendKeys("#patient", pseudonym, chromedp.ByQuery))
	if len(rows) < 50 {
		t.Errorf("patient %s: %d rows, want the clinician's 55 reads and more (a page of 50)", pseudonym, len(rows))
	}
	if bad := rowsUnlike(rows, "patient", pseudonym); len(bad) > 0 {
		t.Errorf("patient %s shows %d rows of another patient, the first: %v", pseudonym, len(bad), bad[0])
	}

	// A purpose.
	b.run("clear the filters", chromedp.Click("#clear", chromedp.ByQuery))
	rows = b.search("purpose underwriting-pricing", chromedp.SendKeys("#purpose", "underwriting-pricing", chromedp.ByQuery))
	if len(rows) == 0 {
		t.Error("purpose underwriting-pricing: no row")
	}
	if bad := rowsUnlike(rows, "purpose", "underwriting-pricing"); len(bad) > 0 {
		t.Errorf("purpose underwriting-pricing shows %d rows of other purposes, the first: %v", len(bad), bad[0])
	}

	// A period: today holds them all, from tomorrow none.
	today := time.Now().UTC().Format("2006-01-02")
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format("2006-01-02")
	b.run("clear the filters", chromedp.Click("#clear", chromedp.ByQuery))
	rows = b.search("period today", chromedp.SetValue("#from", today, chromedp.ByQuery), chromedp.SetValue("#to", today, chromedp.ByQuery))
	if len(rows) != 50 {
		t.Errorf("period %s: %d rows, want a full page of 50", today, len(rows))
	}
	b.run("clear the filters", chromedp.Click("#clear", chromedp.ByQuery))
	if rows = b.search("period from tomorrow", chromedp.SetValue("#from", tomorrow, chromedp.ByQuery)); len(rows) != 0 {
		t.Errorf("period from %s: %d rows, want none", tomorrow, len(rows))
	}

	// Paging: the next page holds the older decisions.
	b.run("clear the filters", chromedp.Click("#clear", chromedp.ByQuery))
	first := b.search("actor type hospital-clinician", chromedp.SendKeys("#actor", "hospital-clinician", chromedp.ByQuery))
	if len(first) != 50 {
		t.Fatalf("actor type hospital-clinician: %d rows on the first page, want 50", len(first))
	}
	seen := map[string]bool{}
	for _, r := range first {
		seen[r["decision"]] = true
	}
	second := b.click("Next", "#next")
	if len(second) == 0 {
		t.Fatal("Next: no row on the second page")
	}
	if bad := rowsUnlike(second, "actor", "hospital-clinician"); len(bad) > 0 {
		t.Errorf("second page: %d rows of other actor types, the first: %v", len(bad), bad[0])
	}
	for _, r := range second {
		if seen[r["decision"]] {
			t.Errorf("second page repeats decision %s of the first", r["decision"])
		}
	}
	if s := b.text("#summary"); !strings.HasPrefix(s, "Decisions 51–") {
		t.Errorf("second page summary = %q, want it to start at 51", s)
	}

	// The chain verifies.
	b.run("verify the log", chromedp.Click("#verify", chromedp.ByQuery))
	b.poll(`/^(Log |Verification )/.test(document.querySelector('#verify-result').textContent)`)
	got := b.text("#verify-result")
	if m := regexp.MustCompile(`^Log intact: (\d+) records$`).FindStringSubmatch(got); m == nil {
		t.Errorf("verify shows %q, want \"Log intact: N records\" (alert: %q)", got, b.text("#alert"))
	} else if n, _ := strconv.Atoi(m[1]); n == 0 {
		t.Errorf("verify shows %q, want N > 0", got)
	}

	// The break-the-glass access awaits review.
	b.run("refresh the break-glass reviews", chromedp.Click("#bg-refresh", chromedp.ByQuery))
	b.waitLoad("#bg", 3)
	gp := false
	for _, r := range b.rows("#bg-rows") {
		if r["actor-type"] == "gp" && r["actor"] == "dr-generaliste" && r["patient"] != "—" && r["patient"] != "" {
			gp = true
		}
	}
	if !gp {
		t.Errorf("break-the-glass reviews do not list the gp event with a patient pseudonym: %v", b.rows("#bg-rows"))
	}
	// The GP's consultation is listed as a declared care relationship.
	b.waitLoad("#cr", 3)
	declared := false
	for _, r := range b.rows("#cr-rows") {
		declared = declared || r["actor-type"] == "gp" && strings.HasPrefix(r["resource"], "Encounter/") && r["patient"] == pseudonym
	}
	if !declared || !strings.HasPrefix(b.text("#cr-summary"), "1 care relationship declared") {
		t.Errorf("declared care relationships: %v, summary %q; want the GP's consultation for %s", b.rows("#cr-rows"), b.text("#cr-summary"), pseudonym)
	}
	// It awaits review; the auditor marks it reviewed, and the list says so.
	awaiting := func(rows []map[string]string) (n int) {
		for _, r := range rows {
			if strings.HasPrefix(r["review"], "requested") {
				n++
			}
		}
		return n
	}
	if n := awaiting(b.rows("#bg-rows")); n != 1 || !strings.HasSuffix(b.text("#bg-summary"), ", 1 awaiting review.") {
		t.Errorf("before review: %d rows awaiting review, summary %q; want 1", n, b.text("#bg-summary"))
	}
	b.run("mark the break-glass access reviewed", chromedp.Click(`#bg-rows button[data-testid="bg-review"]`, chromedp.ByQuery))
	b.waitLoad("#bg", 4)
	rows = b.rows("#bg-rows")
	if n := awaiting(rows); n != 0 || !strings.HasSuffix(b.text("#bg-summary"), ", 0 awaiting review.") {
		t.Errorf("after review: %d rows awaiting review, summary %q; want 0", n, b.text("#bg-summary"))
	}
	reviewed := false
	for _, r := range rows {
		reviewed = reviewed || r["review"] == "completed"
	}
	if !reviewed {
		t.Errorf("after review: no row shows completed: %v", rows)
	}
	if a := b.text("#alert"); a != "" {
		t.Errorf("the alert region shows %q after the auditor's session", a)
	}
}

// rowsUnlike returns the rows whose column col does not show want.
func rowsUnlike(rows []map[string]string, col, want string) []map[string]string {
	var bad []map[string]string
	for _, r := range rows {
		if r[col] != want {
			bad = append(bad, r)
		}
	}
	return bad
}

// consoleBrowser is a headless Chromium tab for one test.
type consoleBrowser struct {
	t   *testing.T
	ctx context.Context
}

func newConsoleBrowser(t *testing.T, exe string) *consoleBrowser {
	t.Helper()
	profile, err := os.MkdirTemp("", "parcours-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	// Chromium may still write its profile for a moment after it is told
	// to exit: the profile is removed last, best effort (a t.TempDir
	// would fail the test on a late write).
	t.Cleanup(func() { _ = os.RemoveAll(profile) })
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(cancelTab)
	ctx, cancelTime := context.WithTimeout(ctx, 45*time.Second)
	t.Cleanup(cancelTime)
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			t.Errorf("JavaScript exception on the page: %s", e.ExceptionDetails.Error())
		}
	})
	if err := chromedp.Run(ctx); err != nil { // starts the browser
		t.Fatalf("start %s: %v", exe, err)
	}
	return &consoleBrowser{t: t, ctx: ctx}
}

func (b *consoleBrowser) run(what string, actions ...chromedp.Action) {
	b.t.Helper()
	if err := chromedp.Run(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// poll waits until the JavaScript expression is true.
func (b *consoleBrowser) poll(expr string) {
	b.t.Helper()
	if err := chromedp.Run(b.ctx, chromedp.Poll(expr, nil, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		b.t.Fatalf("waiting for %s: %v (alert: %q)", expr, err, b.text("#alert"))
	}
}

// waitLoad waits until the region sel has rendered n answers.
func (b *consoleBrowser) waitLoad(sel string, n int) {
	b.t.Helper()
	b.poll(fmt.Sprintf(`Number(document.querySelector(%q).dataset.loads) >= %d`, sel, n))
}

func (b *consoleBrowser) text(sel string) string {
	b.t.Helper()
	var s string
	b.run("read "+sel, chromedp.Evaluate(fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel), &s))
	return strings.TrimSpace(s)
}

// rows reads the table body sel as one map per row, column name (the
// cell's data-col) to the text shown.
func (b *consoleBrowser) rows(sel string) []map[string]string {
	b.t.Helper()
	var rows []map[string]string
	b.run("read "+sel, chromedp.Evaluate(fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).map(
		tr => Object.fromEntries(Array.from(tr.cells).map(td => [td.dataset.col, td.textContent.trim()])))`, sel+" > tr"), &rows))
	return rows
}

// search sets a filter with the given actions, clicks Search and returns
// the rows shown.
func (b *consoleBrowser) search(what string, filter ...chromedp.Action) []map[string]string {
	b.t.Helper()
	b.run("filter by "+what, filter...)
	return b.click("Search by "+what, "#search")
}

// click clicks the button sel that loads decisions and returns the rows
// shown once they are rendered.
func (b *consoleBrowser) click(what, sel string) []map[string]string {
	b.t.Helper()
	n, _ := strconv.Atoi(b.attr("#results", "data-loads"))
	b.run(what, chromedp.Click(sel, chromedp.ByQuery))
	b.waitLoad("#results", n+1)
	if state := b.attr("#results", "data-state"); state != "done" {
		b.t.Fatalf("%s: %s (alert: %q)", what, state, b.text("#alert"))
	}
	return b.rows("#decision-rows")
}

func (b *consoleBrowser) attr(sel, name string) string {
	b.t.Helper()
	var v string
	b.run("read "+sel+"@"+name, chromedp.AttributeValue(sel, name, &v, nil, chromedp.ByQuery))
	return v
}
