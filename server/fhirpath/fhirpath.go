package fhirpath

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// Expr is a compiled FHIRPath expression. It is immutable and safe for
// concurrent use.
type Expr struct {
	src  string
	root node
}

// Compile parses a FHIRPath expression. Syntax errors, unknown functions,
// wrong argument counts and unknown type names are reported as a
// *CompileError with the position of the fault.
func Compile(src string) (*Expr, error) {
	n, err := parse(src)
	if err != nil {
		return nil, err
	}
	return &Expr{src: src, root: n}, nil
}

// MustCompile is Compile for expressions known to be valid; it panics on
// error.
func MustCompile(src string) *Expr {
	e, err := Compile(src)
	if err != nil {
		panic(err)
	}
	return e
}

// String returns the source of the expression.
func (e *Expr) String() string { return e.src }

// CompileError is a fault in the text of an expression.
type CompileError struct {
	Expr   string
	Offset int // byte offset of the fault
	Line   int // 1-based
	Column int // 1-based, in bytes
	Msg    string
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("fhirpath: %d:%d: %s", e.Line, e.Column, e.Msg)
}

func newCompileError(src string, pos int, format string, args ...any) *CompileError {
	pos = min(max(pos, 0), len(src))
	line := 1 + strings.Count(src[:pos], "\n")
	col := pos - strings.LastIndexByte(src[:pos], '\n')
	return &CompileError{Expr: src, Offset: pos, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
}

// EvalError is a failure while evaluating an expression: an operator or
// function applied to a collection of several items where one is
// expected, or to values of the wrong type.
type EvalError struct {
	Expr string
	Pos  int // byte offset of the operator or function in Expr
	Msg  string
}

func (e *EvalError) Error() string {
	return fmt.Sprintf("fhirpath: evaluating %q at offset %d: %s", e.Expr, e.Pos, e.Msg)
}

// Option configures an evaluation.
type Option func(*config)

type config struct {
	resolver func(reference string) any
	env      map[string][]item
	now      time.Time
	resource any
	hasRes   bool
	memberOf func(coded any, valueSet string) (member, known bool)
	trace    func(name string, values []any)
}

// WithResolver sets the function resolve() uses to find the resource a
// reference points to; it returns nil when the reference does not
// resolve. Without a resolver (or when it returns nil), resolve() finds
// contained resources and Bundle entries, and otherwise returns a stub
// {"resourceType": T, "id": id} read from the reference, so that
// subject.where(resolve() is Patient) works at indexing time.
func WithResolver(f func(reference string) any) Option {
	return func(c *config) { c.resolver = f }
}

// WithEnv sets the environment variable %name. A []any value is a
// collection; nil is the empty collection.
func WithEnv(name string, value any) Option {
	return func(c *config) {
		if c.env == nil {
			c.env = map[string][]item{}
		}
		c.env[name] = inputItems(value)
	}
}

// WithNow fixes the time now(), today() and timeOfDay() return.
func WithNow(t time.Time) Option {
	return func(c *config) { c.now = t }
}

// WithResource sets %resource and %rootResource when the evaluation starts
// below a resource (an invariant evaluated on an element); by default they
// are the input.
func WithResource(resource any) Option {
	return func(c *config) { c.resource, c.hasRes = resource, true }
}

// WithMemberOf sets how memberOf(valueSet) decides whether a code, Coding
// or CodeableConcept is in a value set; known false gives an empty result.
// Without it memberOf() is always empty.
func WithMemberOf(f func(coded any, valueSet string) (member, known bool)) Option {
	return func(c *config) { c.memberOf = f }
}

// WithTrace receives the collections passed to trace(); by default trace()
// only returns its input.
func WithTrace(f func(name string, values []any)) Option {
	return func(c *config) { c.trace = f }
}

// inputItems turns a caller value into a collection.
func inputItems(v any) []item {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		out := make([]item, 0, len(x))
		for _, e := range x {
			if e != nil {
				out = append(out, newItem(e, nil, nil))
			}
		}
		return out
	case int:
		return []item{{v: int64(x), t: tInteger}}
	}
	return []item{newItem(v, nil, nil)}
}

type run struct {
	c   evalCtx
	s   scope
	buf [1]item
}

var runs = sync.Pool{New: func() any { return new(run) }}

// eval evaluates the expression and passes the result to f before the
// evaluation state is recycled.
func (e *Expr) eval(resource any, opts []Option, track bool, f func([]item) error) error {
	r := runs.Get().(*run)
	defer func() {
		*r = run{}
		runs.Put(r)
	}()
	var root []item
	switch resource.(type) {
	case []any, nil, int:
		root = inputItems(resource)
	default:
		r.buf[0] = newItem(resource, nil, nil)
		root = r.buf[:]
	}
	r.c = evalCtx{expr: e, root: root, resource: root, rootRes: root, track: track}
	if len(opts) > 0 {
		cfg := &config{}
		for _, o := range opts {
			o(cfg)
		}
		r.c.cfg = cfg
		if cfg.hasRes {
			r.c.resource = inputItems(cfg.resource)
			r.c.rootRes = r.c.resource
		}
	}
	r.s.this = root
	out, err := e.root.eval(&r.c, &r.s, root)
	if err != nil {
		return err
	}
	return f(out)
}

// Evaluate evaluates the expression on a resource (or any JSON value, or a
// []any collection) decoded from FHIR JSON, and returns the output
// collection. Elements of the input are returned as they are
// (map[string]any, string, bool, json.Number, float64); a primitive that
// has only extensions is nil. Computed values are bool, string, int64
// (Integer), json.Number (Decimal), Date, DateTime, Time and Quantity;
// type() returns maps with namespace and name.
func (e *Expr) Evaluate(resource any, opts ...Option) ([]any, error) {
	var res []any
	err := e.eval(resource, opts, false, func(out []item) error {
		res = outputs(out)
		return nil
	})
	return res, err
}

// EvaluateBool evaluates the expression as a condition: an empty result
// is false, a single boolean is its value, any other single item is true,
// and several items are an error.
func (e *Expr) EvaluateBool(resource any, opts ...Option) (bool, error) {
	var res bool
	err := e.eval(resource, opts, false, func(out []item) error {
		b, ok, err := singletonBool(out)
		if err != nil {
			return &EvalError{Expr: e.src, Msg: err.Error()}
		}
		res = ok && b
		return nil
	})
	return res, err
}

// TypedValue is an output value with its FHIRPath type: FHIR.HumanName,
// FHIR.code, FHIR.dateTime, FHIR.Patient, System.Integer, System.String...
// Backbone elements are FHIR.BackboneElement. Type is empty when unknown
// (an object outside the FHIR model).
type TypedValue struct {
	Value any
	Type  string
}

// EvaluateTyped is Evaluate, with the type of each output value.
func (e *Expr) EvaluateTyped(resource any, opts ...Option) ([]TypedValue, error) {
	var res []TypedValue
	err := e.eval(resource, opts, false, func(out []item) error {
		if len(out) == 0 {
			return nil
		}
		res = make([]TypedValue, len(out))
		for i, it := range out {
			res[i].Value = output(it)
			if it.t != nil {
				res[i].Type = it.t.qualified()
			}
		}
		return nil
	})
	return res, err
}

// Location is an output value with the place where it sits in the input,
// for FHIRPath Patch: Parent[Name], or Parent[Name][Index] when the element
// repeats (Index is -1 otherwise). Name is the JSON name, valueQuantity for
// Observation.value. Parent is nil for values that are not elements of the
// input (the input itself, computed values, resolved resources).
type Location struct {
	Value  any
	Type   string
	Parent map[string]any
	Name   string
	Index  int
}

// Locate is Evaluate, with the location of each output value in the input.
func (e *Expr) Locate(resource any, opts ...Option) ([]Location, error) {
	var res []Location
	err := e.eval(resource, opts, true, func(out []item) error {
		if len(out) == 0 {
			return nil
		}
		res = make([]Location, len(out))
		for i, it := range out {
			res[i] = Location{Value: output(it), Index: -1}
			if it.t != nil {
				res[i].Type = it.t.qualified()
			}
			if it.loc != nil {
				res[i].Parent, res[i].Name, res[i].Index = it.loc.parent, it.loc.name, it.loc.index
			}
		}
		return nil
	})
	return res, err
}
