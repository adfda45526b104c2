package fhirpath

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"
)

// item is one element of a collection: a value, its type, and for FHIR
// primitives the sibling _name object holding their id and extensions.
type item struct {
	v   any
	t   *typeDef
	ext map[string]any
	loc *location // where v is in the input; only tracked for Locate
}

// location is where an element value sits: parent[name], or
// parent[name][index] when index >= 0.
type location struct {
	parent map[string]any
	name   string
	index  int
}

// node is a compiled expression.
type node interface {
	eval(c *evalCtx, s *scope, focus []item) ([]item, error)
}

// evalCtx holds what an evaluation needs besides the focus.
type evalCtx struct {
	expr     *Expr
	root     []item // %context, the input collection
	resource []item // %resource
	rootRes  []item // %rootResource
	cfg      *config
	now      time.Time
	nowSet   bool
	track    bool // record the location of navigated values
}

// scope holds the special variables of an iteration.
type scope struct {
	this  []item
	index int
	total []item
	one   [1]item
}

func (c *evalCtx) errorf(pos int, format string, args ...any) error {
	return &EvalError{Expr: c.expr.src, Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

func (c *evalCtx) clock() time.Time {
	if !c.nowSet {
		c.now, c.nowSet = time.Now(), true
		if c.cfg != nil && !c.cfg.now.IsZero() {
			c.now = c.cfg.now
		}
	}
	return c.now
}

// newItem types a value found under an element of the given type; nil
// types are inferred from the value.
func newItem(v any, t *typeDef, ext map[string]any) item {
	if t == nil || t == model.resource {
		if m, ok := v.(map[string]any); ok {
			if rt := resourceType(m); rt != nil {
				return item{v: v, t: rt}
			}
		}
		if t == nil {
			t = inferType(v)
		}
	}
	return item{v: v, t: t, ext: ext}
}

// child appends the values of the element name of it to out; with
// track, their locations.
func child(out []item, it item, name string, track bool) []item {
	m, ok := it.v.(map[string]any)
	if !ok {
		if it.ext != nil && (name == "extension" || name == "id") {
			return child(out, item{v: it.ext, t: model.element}, name, track)
		}
		return out
	}
	var ed *elemDef
	if it.t != nil {
		ed = it.t.elems[name]
	}
	if ed == nil {
		// not in the model: read the JSON as it is, and try a choice
		// element when the object's type is unknown.
		v, present := m[name]
		ext := m["_"+name]
		if !present && ext == nil {
			if it.t == nil || it.t.elems == nil {
				return choice(out, m, name, track)
			}
			return out
		}
		return appendValues(out, v, ext, nil, m, name, track)
	}
	if ed.choice {
		return choice(out, m, name, track)
	}
	v := m[name]
	var ext any
	if ed.t == nil || ed.t.prim {
		ext = m[ed.under]
	}
	if v == nil && ext == nil {
		return out
	}
	return appendValues(out, v, ext, ed.t, m, name, track)
}

// appendValues appends a JSON element value (single or array) with its
// _name sibling; parent[name] is where it was found.
func appendValues(out []item, v, ext any, t *typeDef, parent map[string]any, name string, track bool) []item {
	at := func(index int) *location {
		if !track {
			return nil
		}
		return &location{parent: parent, name: name, index: index}
	}
	switch x := v.(type) {
	case []any:
		exts, _ := ext.([]any)
		if cap(out)-len(out) < len(x) {
			n := make([]item, len(out), len(out)+len(x))
			copy(n, out)
			out = n
		}
		for i, e := range x {
			var em map[string]any
			if i < len(exts) {
				em, _ = exts[i].(map[string]any)
			}
			if e == nil && em == nil {
				continue
			}
			it := newItem(e, t, em)
			it.loc = at(i)
			out = append(out, it)
		}
		for i := len(x); i < len(exts); i++ {
			if em, ok := exts[i].(map[string]any); ok {
				out = append(out, item{t: t, ext: em, loc: at(i)})
			}
		}
	case nil:
		switch e := ext.(type) {
		case map[string]any:
			out = append(out, item{t: t, ext: e, loc: at(-1)})
		case []any:
			for i, x := range e {
				if em, ok := x.(map[string]any); ok {
					out = append(out, item{t: t, ext: em, loc: at(i)})
				}
			}
		}
	default:
		em, _ := ext.(map[string]any)
		it := newItem(v, t, em)
		it.loc = at(-1)
		out = append(out, it)
	}
	return out
}

// choice appends the value of a choice element (value[x]) found under its
// typed JSON name (valueQuantity), typed by the suffix. A primitive value
// may be present only as its _valueX sibling.
func choice(out []item, m map[string]any, name string, track bool) []item {
	for k, v := range m {
		under := k != "" && k[0] == '_'
		key := k
		if under {
			key = k[1:]
		}
		if len(key) <= len(name) || !strings.HasPrefix(key, name) {
			continue
		}
		t := choiceType(key[len(name):])
		if t == nil {
			continue
		}
		if under {
			if _, ok := m[key]; !ok {
				out = appendValues(out, nil, v, t, m, key, track)
			}
			continue
		}
		var ext any
		if t.prim {
			ext = m["_"+key]
		}
		out = appendValues(out, v, ext, t, m, key, track)
	}
	return out
}

// children appends all child values of an item, in element name order.
func children(out []item, it item, track bool) []item {
	m, ok := it.v.(map[string]any)
	if !ok {
		if it.ext != nil {
			out = child(out, it, "id", track)
			out = child(out, it, "extension", track)
		}
		return out
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		if k == "resourceType" {
			continue
		}
		if k != "" && k[0] == '_' {
			if _, ok := m[k[1:]]; ok {
				continue
			}
			k = k[1:]
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var ed *elemDef
		if it.t != nil {
			ed = it.t.elems[k]
		}
		var t *typeDef
		if ed != nil {
			t = ed.t
		} else if it.t != nil {
			// a choice variant not listed in the model
			for base, e := range it.t.elems {
				if e.choice && strings.HasPrefix(k, base) {
					t = choiceType(k[len(base):])
					break
				}
			}
		}
		var ext any
		if t == nil || t.prim {
			ext = m["_"+k]
		}
		out = appendValues(out, m[k], ext, t, m, k, track)
	}
	return out
}

// mapID identifies a JSON object for repeat().
func mapID(m map[string]any) uintptr { return reflect.ValueOf(m).Pointer() }

// Nodes.

type literalNode struct {
	items  []item
	number bool // a number or quantity, for folding -1
}

func (n *literalNode) eval(*evalCtx, *scope, []item) ([]item, error) { return n.items, nil }

type parenNode struct{ x node }

func (n *parenNode) eval(c *evalCtx, s *scope, focus []item) ([]item, error) {
	return n.x.eval(c, s, focus)
}

type specialNode struct{ name string }

func (n *specialNode) eval(c *evalCtx, s *scope, focus []item) ([]item, error) {
	switch n.name {
	case "this":
		return s.this, nil
	case "index":
		return []item{{v: int64(s.index), t: tInteger}}, nil
	}
	return s.total, nil
}

type envNode struct {
	name string
	pos  int
}

func (n *envNode) eval(c *evalCtx, s *scope, focus []item) ([]item, error) {
	switch n.name {
	case "context":
		return c.root, nil
	case "resource":
		return c.resource, nil
	case "rootResource":
		return c.rootRes, nil
	case "ucum":
		return []item{{v: "http://unitsofmeasure.org", t: tString}}, nil
	case "sct":
		return []item{{v: "http://snomed.info/sct", t: tString}}, nil
	case "loinc":
		return []item{{v: "http://loinc.org", t: tString}}, nil
	}
	if c.cfg != nil {
		if v, ok := c.cfg.env[n.name]; ok {
			return v, nil
		}
	}
	if rest, ok := strings.CutPrefix(n.name, "vs-"); ok {
		return []item{{v: "http://hl7.org/fhir/ValueSet/" + rest, t: tString}}, nil
	}
	if rest, ok := strings.CutPrefix(n.name, "ext-"); ok {
		return []item{{v: "http://hl7.org/fhir/StructureDefinition/" + rest, t: tString}}, nil
	}
	return nil, c.errorf(n.pos, "undefined environment variable %%%s", n.name)
}

// identNode is a name at the start of a path: an element of the focus,
// or, when it starts with an upper case letter, a type the focus must have
// (Patient.name).
type identNode struct {
	name string
	typ  *typeDef // the FHIR type of that name, resolved at compile time
	pos  int
}

func newIdentNode(name string, pos int) *identNode {
	n := &identNode{name: name, pos: pos}
	if name != "" && name[0] >= 'A' && name[0] <= 'Z' && !strings.Contains(name, "_") {
		n.typ = fhirType(name)
	}
	return n
}

func (n *identNode) eval(c *evalCtx, s *scope, focus []item) ([]item, error) {
	if n.typ != nil {
		k := 0
		for _, it := range focus {
			if it.t.derives(n.typ) {
				k++
			}
		}
		if k == len(focus) {
			return focus, nil
		}
		out := make([]item, 0, k)
		for _, it := range focus {
			if it.t.derives(n.typ) {
				out = append(out, it)
			}
		}
		return out, nil
	}
	return navigate(focus, n.name, c.track), nil
}

func navigate(focus []item, name string, track bool) []item {
	var out []item
	for _, it := range focus {
		out = child(out, it, name, track)
	}
	return out
}

type memberNode struct {
	target node
	name   string
	pos    int
}

func (n *memberNode) eval(c *evalCtx, s *scope, focus []item) ([]item, error) {
	in, err := n.target.eval(c, s, focus)
	if err != nil || len(in) == 0 {
		return nil, err
	}
	return navigate(in, n.name, c.track), nil
}

type indexerNode struct {
	target, index node
	pos           int
}

func (n *indexerNode) eval(c *evalCtx, s *scope, focus []item) ([]item, error) {
	in, err := n.target.eval(c, s, focus)
	if err != nil || len(in) == 0 {
		return nil, err
	}
	idx, err := n.index.eval(c, s, s.this)
	if err != nil {
		return nil, err
	}
	i, ok, err := c.integerArg(idx, n.pos)
	if err != nil || !ok {
		return nil, err
	}
	if i < 0 || i >= int64(len(in)) {
		return nil, nil
	}
	return in[i : i+1 : i+1], nil
}

type unaryNode struct {
	neg bool
	x   node
	pos int
}

func (n *unaryNode) eval(c *evalCtx, s *scope, focus []item) ([]item, error) {
	in, err := n.x.eval(c, s, focus)
	if err != nil || len(in) == 0 {
		return nil, err
	}
	if len(in) > 1 {
		return nil, c.errorf(n.pos, "unary operator on a collection of %d items", len(in))
	}
	it := in[0]
	switch {
	case isNumber(it) && isIntegerItem(it):
		i, _ := toInteger(it)
		if n.neg {
			i = -i
		}
		return []item{{v: i, t: tInteger}}, nil
	case isNumber(it):
		d, _ := toDecimal(it)
		if n.neg {
			d.f = -d.f
			if d.f == 0 {
				d.f = 0
			}
		}
		return []item{{v: d, t: tDecimal}}, nil
	}
	if q, ok := toQuantity(it); ok {
		if n.neg {
			q.v.f = -q.v.f
		}
		return []item{{v: q, t: tQuantity}}, nil
	}
	return nil, c.errorf(n.pos, "unary %s on %s", map[bool]string{true: "-", false: "+"}[n.neg], typeName(it))
}

type typeOpNode struct {
	is   bool
	x    node
	spec typeSpec
	pos  int
}

func (n *typeOpNode) eval(c *evalCtx, s *scope, focus []item) ([]item, error) {
	in, err := n.x.eval(c, s, focus)
	if err != nil || len(in) == 0 {
		return nil, err
	}
	if n.is {
		if len(in) > 1 {
			return nil, c.errorf(n.pos, "'is' on a collection of %d items", len(in))
		}
		return boolean(n.spec.is(in[0], false)), nil
	}
	return asType(c, in, n.spec, n.pos)
}

// asType implements as: the single input if it is of the type. For
// convenience with choice elements (Observation.value as Quantity) several
// inputs are filtered like ofType.
func asType(c *evalCtx, in []item, spec typeSpec, pos int) ([]item, error) {
	k := 0
	for _, it := range in {
		if spec.is(it, true) {
			k++
		}
	}
	if k == len(in) || k == 0 {
		return in[:k:k], nil
	}
	out := make([]item, 0, k)
	for _, it := range in {
		if spec.is(it, true) {
			out = append(out, it)
		}
	}
	return out, nil
}

type callNode struct {
	target node // nil: the function applies to the focus
	fn     *funcDef
	args   []node
	pos    int
	spec   typeSpec // for is, as, ofType
	data   any      // prepared by fn.prepare (a compiled regexp, sort keys)
}

func (n *callNode) eval(c *evalCtx, s *scope, focus []item) ([]item, error) {
	in := focus
	if n.target != nil {
		var err error
		if in, err = n.target.eval(c, s, focus); err != nil {
			return nil, err
		}
	}
	return n.fn.impl(c, s, in, n)
}

// arg evaluates a (non-iterating) argument in the scope of the call.
func (n *callNode) arg(c *evalCtx, s *scope, i int) ([]item, error) {
	return n.args[i].eval(c, s, s.this)
}

type binaryNode struct {
	op   opKind
	l, r node
	pos  int
}

func (n *binaryNode) eval(c *evalCtx, s *scope, focus []item) ([]item, error) {
	l, err := n.l.eval(c, s, focus)
	if err != nil {
		return nil, err
	}
	switch n.op {
	case opAnd, opOr, opXor, opImplies:
		return n.logic(c, s, focus, l)
	}
	r, err := n.r.eval(c, s, focus)
	if err != nil {
		return nil, err
	}
	switch n.op {
	case opUnion:
		return union(l, r), nil
	case opEq, opNe:
		eq, ok := equalCollections(l, r)
		if !ok {
			return nil, nil
		}
		return boolean(eq == (n.op == opEq)), nil
	case opEquiv, opNotEquiv:
		return boolean(equivalentCollections(l, r) == (n.op == opEquiv)), nil
	case opIn, opContains:
		elem, coll := l, r
		if n.op == opContains {
			elem, coll = r, l
		}
		if len(elem) == 0 {
			return nil, nil
		}
		if len(elem) > 1 {
			return nil, c.errorf(n.pos, "'%s' needs a single item, got %d", opNames[n.op], len(elem))
		}
		return boolean(containsItem(coll, elem[0])), nil
	}
	if len(l) == 0 || len(r) == 0 {
		if n.op == opConcat {
			return concat(c, n.pos, l, r)
		}
		return nil, nil
	}
	if len(l) > 1 || len(r) > 1 {
		return nil, c.errorf(n.pos, "operator '%s' needs single items, got %d and %d", opNames[n.op], len(l), len(r))
	}
	switch n.op {
	case opLt, opLe, opGt, opGe:
		cmp, ok, err := compareItems(l[0], r[0])
		if err != nil {
			return nil, c.errorf(n.pos, "%v", err)
		}
		if !ok {
			return nil, nil
		}
		switch n.op {
		case opLt:
			return boolean(cmp < 0), nil
		case opLe:
			return boolean(cmp <= 0), nil
		case opGt:
			return boolean(cmp > 0), nil
		}
		return boolean(cmp >= 0), nil
	case opConcat:
		return concat(c, n.pos, l, r)
	}
	res, err := arithmetic(n.op, l[0], r[0])
	if err != nil {
		return nil, c.errorf(n.pos, "%v", err)
	}
	return res, nil
}

// logic implements and, or, xor and implies with three-valued logic; the
// right operand is not evaluated when the left decides.
func (n *binaryNode) logic(c *evalCtx, s *scope, focus []item, l []item) ([]item, error) {
	lv, lok, err := singletonBool(l)
	if err != nil {
		return nil, c.errorf(n.pos, "left of '%s': %v", opNames[n.op], err)
	}
	switch {
	case n.op == opAnd && lok && !lv:
		return boolean(false), nil
	case n.op == opOr && lok && lv:
		return boolean(true), nil
	case n.op == opImplies && lok && !lv:
		return boolean(true), nil
	}
	r, err := n.r.eval(c, s, focus)
	if err != nil {
		return nil, err
	}
	rv, rok, err := singletonBool(r)
	if err != nil {
		return nil, c.errorf(n.pos, "right of '%s': %v", opNames[n.op], err)
	}
	switch n.op {
	case opAnd:
		if rok && !rv {
			return boolean(false), nil
		}
		if lok && rok {
			return boolean(true), nil
		}
	case opOr:
		if rok && rv {
			return boolean(true), nil
		}
		if lok && rok {
			return boolean(false), nil
		}
	case opXor:
		if lok && rok {
			return boolean(lv != rv), nil
		}
	case opImplies:
		if rok && rv {
			return boolean(true), nil
		}
		if lok && rok {
			return boolean(false), nil
		}
	}
	return nil, nil
}

var (
	trueItems  = []item{{v: true, t: tBoolean}}
	falseItems = []item{{v: false, t: tBoolean}}
)

func boolean(b bool) []item {
	if b {
		return trueItems
	}
	return falseItems
}

// singletonBool converts a collection to a boolean following "singleton
// evaluation of collections": empty is unknown, a single boolean is its
// value, any other single item is true, several items are an error.
func singletonBool(in []item) (val, ok bool, err error) {
	switch len(in) {
	case 0:
		return false, false, nil
	case 1:
		if b, isBool := in[0].v.(bool); isBool {
			return b, true, nil
		}
		return true, true, nil
	}
	return false, false, fmt.Errorf("expected a single boolean, got %d items", len(in))
}

// typeName names the type of an item for error messages.
func typeName(it item) string {
	if it.t != nil {
		return it.t.qualified()
	}
	if _, ok := it.v.(map[string]any); ok {
		return "an object"
	}
	return fmt.Sprintf("%T", it.v)
}

// output converts an item to the Go value returned to callers.
func output(it item) any {
	switch v := it.v.(type) {
	case decimal:
		return json.Number(v.String())
	case quantity:
		return Quantity{Value: json.Number(v.v.String()), Unit: v.unit}
	}
	return it.v
}
