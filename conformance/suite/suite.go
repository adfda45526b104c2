package suite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"
)

// IdentifierSystem prefixes the identifier system of every resource a run
// writes; the run id completes it.
const IdentifierSystem = "urn:parcours:conformance:"

// DefaultTimeout bounds each request of the default client.
const DefaultTimeout = 30 * time.Second

// Config says which server to test.
type Config struct {
	URL     string       // FHIR base, e.g. http://127.0.0.1:8080/fhir (required)
	Token   string       // optional bearer token (Authorization: Bearer)
	Purpose string       // optional X-Purpose-Of-Use header value
	Client  *http.Client // optional; the default times out each request after DefaultTimeout

	// Validate, when set, checks every resource the server returns during
	// the run (top-level resources; a Bundle's validation covers its
	// entries). The command passes conformance.Validator.Validate, the
	// official R4 JSON schema. Failures are reported by the validity check.
	Validate func(resource map[string]any) error
}

// Result is the outcome of one check. Pass and Skipped are both false for a
// failure; Detail says what was seen (for a skip: why).
type Result struct {
	Group, Name string
	Pass        bool
	Skipped     bool
	Detail      string
	Duration    time.Duration
}

// Status is PASS, FAIL or SKIP.
func (r Result) Status() string {
	switch {
	case r.Skipped:
		return "SKIP"
	case r.Pass:
		return "PASS"
	}
	return "FAIL"
}

// Report is every Result of a run, in order, with the counts.
type Report struct {
	Results                 []Result
	Passed, Failed, Skipped int
}

func (r *Report) add(res Result) {
	r.Results = append(r.Results, res)
	switch {
	case res.Skipped:
		r.Skipped++
	case res.Pass:
		r.Passed++
	default:
		r.Failed++
	}
}

// The detail column of Table is cut at tableDetail characters, or
// failDetail for a failure.
const (
	tableDetail = 160
	failDetail  = 600
)

// Table renders the report as a pass/fail table (group, check, status,
// detail) and a line of counts.
func (r Report) Table() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tCHECK\tRESULT\tDETAIL")
	for _, res := range r.Results {
		n := tableDetail
		if !res.Pass && !res.Skipped {
			n = failDetail
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", res.Group, res.Name, res.Status(), clip(res.Detail, n))
	}
	tw.Flush()
	fmt.Fprintf(&b, "%d passed, %d failed, %d skipped\n", r.Passed, r.Failed, r.Skipped)
	return b.String()
}

// Run tests the server at cfg.URL and reports every check. Its error is
// non-nil only when the configuration is unusable, the server cannot be
// reached at all (GET metadata fails below HTTP), or ctx ends (then with the
// report of the groups run so far).
func Run(ctx context.Context, cfg Config) (Report, error) {
	r, err := newRunner(cfg)
	if err != nil {
		return Report{}, err
	}
	r.where = "metadata/CapabilityStatement"
	r.metadata, err = r.do(ctx, http.MethodGet, "metadata", nil)
	if err != nil {
		return Report{}, fmt.Errorf("suite: server unreachable: %w", err)
	}
	for _, g := range groups {
		r.run(ctx, g.name, g.checks(r))
		if err := ctx.Err(); err != nil {
			return r.report, fmt.Errorf("suite: after group %s: %w", g.name, err)
		}
	}
	r.cleanup(ctx)
	r.run(ctx, "validity", r.validityChecks())
	return r.report, ctx.Err()
}

// groups are run in this order; validity comes last, after the clean-up.
var groups = []struct {
	name   string
	checks func(*runner) []check
}{
	{"metadata", (*runner).metadataChecks},
	{"crud", (*runner).crudChecks},
	{"history", (*runner).historyChecks},
	{"etag", (*runner).etagChecks},
	{"conditional", (*runner).conditionalChecks},
	{"bundles", (*runner).bundleChecks},
	{"search", (*runner).searchChecks},
	{"errors", (*runner).errorChecks},
}

// check is one named test. run returns a detail for the table on success, a
// skipError when the check does not apply, or the failure.
type check struct {
	name string
	run  func(ctx context.Context) (string, error)
}

// skipError marks a check that does not apply to this server.
type skipError string

func (e skipError) Error() string { return string(e) }

func skipf(format string, args ...any) error { return skipError(fmt.Sprintf(format, args...)) }

// runner is the state of one Run.
type runner struct {
	cfg    Config
	client *http.Client
	base   string // FHIR base without a trailing slash
	runID  string
	system string // identifier system of the resources this run writes

	metadata *response
	caps     *capability

	created []string // "Type/id" written by the run, deleted by cleanup
	seen    map[string]bool

	where     string   // group/check being run, for validity reports
	validated int      // resources passed to cfg.Validate
	invalid   []string // descriptions of the first invalid ones
	nInvalid  int

	report Report
}

func newRunner(cfg Config) (*runner, error) {
	base, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("suite: URL %q: want an absolute http or https FHIR base", cfg.URL)
	}
	base.RawQuery, base.Fragment = "", ""
	id := make([]byte, 4)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("suite: run id: %w", err)
	}
	r := &runner{
		cfg: cfg, client: cfg.Client, base: base.String(), runID: hex.EncodeToString(id),
		caps: &capability{missing: "no CapabilityStatement (see metadata)"},
		seen: map[string]bool{},
	}
	r.system = IdentifierSystem + r.runID
	if r.client == nil {
		r.client = &http.Client{Timeout: DefaultTimeout}
	}
	return r, nil
}

// run runs checks in order; a panic in one is its failure.
func (r *runner) run(ctx context.Context, group string, checks []check) {
	for _, c := range checks {
		r.where = group + "/" + c.name
		start := time.Now()
		detail, err := protect(ctx, c.run)
		res := Result{Group: group, Name: c.name, Duration: time.Since(start)}
		var skip skipError
		switch {
		case err == nil:
			res.Pass, res.Detail = true, detail
		case errors.As(err, &skip):
			res.Skipped, res.Detail = true, skip.Error()
		default:
			res.Detail = err.Error()
		}
		r.report.add(res)
	}
}

func protect(ctx context.Context, f func(context.Context) (string, error)) (detail string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("check panicked: %v", p)
		}
	}()
	return f(ctx)
}

// track remembers a resource the run wrote, for cleanup.
func (r *runner) track(typ, id string) {
	if id == "" {
		return
	}
	ref := typ + "/" + id
	if !r.seen[ref] {
		r.seen[ref] = true
		r.created = append(r.created, ref)
	}
}

// cleanup deletes what the run wrote, newest first, ignoring failures (a
// server without delete keeps them; their identifiers are unique to the run).
func (r *runner) cleanup(ctx context.Context) {
	r.where = "cleanup"
	for i := len(r.created) - 1; i >= 0; i-- {
		_, _ = r.do(ctx, http.MethodDelete, r.created[i], nil)
	}
}

// maxInvalid is how many invalid resources the validity check describes.
const maxInvalid = 5

// validate applies cfg.Validate to a resource the server returned.
func (r *runner) validate(res map[string]any) {
	if r.cfg.Validate == nil {
		return
	}
	r.validated++
	err := r.cfg.Validate(res)
	if err == nil {
		return
	}
	r.nInvalid++
	if len(r.invalid) < maxInvalid {
		r.invalid = append(r.invalid, fmt.Sprintf("%s in %s: %s", label(res), r.where, clip(err.Error(), 200)))
	}
}

func (r *runner) validityChecks() []check {
	return []check{{"returned resources valid", func(context.Context) (string, error) {
		if r.cfg.Validate == nil {
			return "", skipf("no validator configured")
		}
		if r.nInvalid > 0 {
			return "", fmt.Errorf("%d of %d invalid: %s", r.nInvalid, r.validated, strings.Join(r.invalid, " | "))
		}
		return fmt.Sprintf("%d resources valid", r.validated), nil
	}}}
}
