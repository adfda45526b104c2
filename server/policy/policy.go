// Package policy embeds Open Policy Agent: the Rego policies of package
// policies are prepared once (PrepareForEval) and evaluated in process for
// every decision through Decide. A policy that cannot be evaluated denies:
// errors, an undefined or malformed result and a missing policy all give
// Allow false. OPA stops here; the input/output contract is
// policies/README.md.
package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"
)

// Query is the entry point of every decision.
const Query = "data.parcours.authz.decision"

// Obligation is something the server must do with an allowed answer.
type Obligation struct {
	Type   string   `json:"type"`             // filter, redact, pseudonymise, aggregate, audit, notify, alert, omit-content
	K      int      `json:"k,omitempty"`      // aggregate: minimum cell size
	Domain string   `json:"domain,omitempty"` // pseudonymise: key domain
	Target string   `json:"target,omitempty"` // notify: who
	Paths  []string `json:"paths,omitempty"`  // redact: element paths
}

// Decision is the policy's answer.
type Decision struct {
	Allow       bool         `json:"allow"`
	Reasons     []string     `json:"reasons"`
	Obligations []Obligation `json:"obligations"`
	LegalBasis  []string     `json:"legal_basis"`
	// Revision is the hash of the policy files that decided.
	Revision string `json:"-"`
	// Elapsed is the evaluation time (zero when cached).
	Elapsed time.Duration `json:"-"`
	Cached  bool          `json:"-"`
}

// Has reports whether the decision carries an obligation of type t.
func (d Decision) Has(t string) bool {
	for _, o := range d.Obligations {
		if o.Type == t {
			return true
		}
	}
	return false
}

// Obligation returns the first obligation of type t.
func (d Decision) Obligation(t string) (Obligation, bool) {
	for _, o := range d.Obligations {
		if o.Type == t {
			return o, true
		}
	}
	return Obligation{}, false
}

// AuditOnly lists the input fields that identify what a decision was about
// for the audit log but must not change the decision: a rule may not read
// them (New checks the modules' references). The memo key of a decision
// leaves them out, so that reading a thousand resources in the same
// situation costs one evaluation.
var AuditOnly = []string{"input.resource.id", "input.patient.pseudonym", "input.subject.sub"}

// Keyer is implemented by inputs that can write their memo key: a byte
// encoding of the input without its AuditOnly fields, such that two inputs
// get the same key only when they are equal but for those fields. It
// spares the memo a JSON encoding of every question.
type Keyer interface{ AppendMemoKey(dst []byte) []byte }

// keyedPrefix starts the memo keys written by a Keyer: never the first
// byte of JSON, so that they cannot meet the JSON keys of other inputs.
const keyedPrefix = 0

// keyBufs recycles memo key buffers: a hit allocates nothing.
var keyBufs = sync.Pool{New: func() any { return new([]byte) }}

// Engine evaluates decisions.
type Engine struct {
	query    rego.PreparedEvalQuery
	revision string
	sources  map[string]string // file name → content, of this revision
	// auditOnlyUnused: no module references an AuditOnly field, so memo
	// keys may leave them out.
	auditOnlyUnused bool

	mu    sync.RWMutex
	cache map[string]Decision
}

// maxCache bounds the decision cache; it is emptied when full.
const maxCache = 100_000

// New loads every *.rego (not *_test.rego) and *.json file of fsys and
// prepares the decision query.
func New(ctx context.Context, fsys fs.FS) (*Engine, error) {
	sources := map[string]string{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(p, "_test.rego") || (path.Ext(p) != ".rego" && path.Ext(p) != ".json") {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		sources[p] = string(b)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("policy files: %w", err)
	}
	return FromSources(ctx, sources)
}

// FromSources prepares a decision from policy sources (file name →
// content), as New does; replay uses it with recorded revisions.
func FromSources(ctx context.Context, sources map[string]string) (*Engine, error) {
	names := make([]string, 0, len(sources))
	for n := range sources {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	opts := []func(*rego.Rego){rego.Query(Query)}
	data := map[string]any{}
	modules := 0
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00%s", n, len(sources[n]), sources[n])
		switch path.Ext(n) {
		case ".rego":
			opts = append(opts, rego.Module(n, sources[n]))
			modules++
		case ".json":
			var v map[string]any
			if err := util.UnmarshalJSON([]byte(sources[n]), &v); err != nil {
				return nil, fmt.Errorf("policy data %s: %w", n, err)
			}
			if err := merge(data, v); err != nil {
				return nil, fmt.Errorf("policy data %s: %w", n, err)
			}
		}
	}
	if modules == 0 {
		return nil, errors.New("no policy modules: refusing to start without a policy")
	}
	opts = append(opts, rego.Store(inmem.NewFromObject(data)), rego.StrictBuiltinErrors(true))
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("prepare policy: %w", err)
	}
	unused, err := auditOnlyUnused(sources)
	if err != nil {
		return nil, err
	}
	return &Engine{query: pq, revision: hex.EncodeToString(h.Sum(nil)), sources: sources, cache: map[string]Decision{}, auditOnlyUnused: unused}, nil
}

// auditOnlyUnused reports whether no module refers to an AuditOnly field.
func auditOnlyUnused(sources map[string]string) (bool, error) {
	unused := true
	for name, src := range sources {
		if path.Ext(name) != ".rego" {
			continue
		}
		m, err := ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return false, fmt.Errorf("policy %s: %w", name, err)
		}
		ast.WalkRefs(m, func(r ast.Ref) bool {
			for _, f := range AuditOnly {
				if strings.HasPrefix(r.String(), f) {
					unused = false
				}
			}
			return false
		})
	}
	return unused, nil
}

func merge(dst, src map[string]any) error {
	for k, v := range src {
		if sub, ok := v.(map[string]any); ok {
			if cur, ok := dst[k].(map[string]any); ok {
				if err := merge(cur, sub); err != nil {
					return err
				}
				continue
			}
		}
		if _, exists := dst[k]; exists {
			return fmt.Errorf("data key %q defined twice", k)
		}
		dst[k] = v
	}
	return nil
}

// Revision is the SHA-256 of the policy files.
func (e *Engine) Revision() string { return e.revision }

// Sources returns the policy files of this revision (for the audit log's
// revision store).
func (e *Engine) Sources() map[string]string { return e.sources }

// Decide evaluates input (any JSON-marshalable value). On any error the
// decision denies and the error says why. Identical questions are answered
// from a memo (see AuditOnly and Keyer for what "identical" leaves out).
func (e *Engine) Decide(ctx context.Context, input any) (Decision, error) {
	k, keyed := input.(Keyer)
	keyed = keyed && e.auditOnlyUnused
	var key []byte
	if keyed {
		buf := keyBufs.Get().(*[]byte)
		key = k.AppendMemoKey(append((*buf)[:0], keyedPrefix))
		defer func() { *buf = key; keyBufs.Put(buf) }()
	} else {
		var err error
		if key, err = json.Marshal(input); err != nil {
			return deny(e.revision, "policy-input-error"), fmt.Errorf("policy input: %w", err)
		}
	}
	e.mu.RLock()
	d, ok := e.cache[string(key)]
	e.mu.RUnlock()
	if ok {
		d.Cached, d.Elapsed = true, 0
		return d, nil
	}
	raw := key
	if keyed {
		var err error
		if raw, err = json.Marshal(input); err != nil {
			return deny(e.revision, "policy-input-error"), fmt.Errorf("policy input: %w", err)
		}
	}
	d, err := e.eval(ctx, raw)
	if err != nil {
		return d, err
	}
	e.mu.Lock()
	if len(e.cache) >= maxCache {
		e.cache = map[string]Decision{}
	}
	e.cache[string(key)] = d
	e.mu.Unlock()
	return d, nil
}

func (e *Engine) eval(ctx context.Context, raw []byte) (Decision, error) {
	start := time.Now()
	var in any
	if err := util.UnmarshalJSON(raw, &in); err != nil {
		return deny(e.revision, "policy-input-error"), err
	}
	rs, err := e.query.Eval(ctx, rego.EvalInput(in))
	if err != nil {
		return deny(e.revision, "policy-evaluation-error"), fmt.Errorf("policy evaluation: %w", err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return deny(e.revision, "policy-undefined"), errors.New("policy decision undefined")
	}
	obj, isObj := rs[0].Expressions[0].Value.(map[string]any)
	if _, isBool := obj["allow"].(bool); !isObj || !isBool {
		return deny(e.revision, "policy-result-malformed"), errors.New("policy result is not an object with a boolean allow")
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return deny(e.revision, "policy-result-malformed"), err
	}
	var d Decision
	if err := json.Unmarshal(b, &d); err != nil {
		return deny(e.revision, "policy-result-malformed"), fmt.Errorf("policy result: %w", err)
	}
	d.Revision, d.Elapsed = e.revision, time.Since(start)
	return d, nil
}

func deny(revision, reason string) Decision {
	return Decision{Allow: false, Reasons: []string{reason}, Revision: revision}
}
