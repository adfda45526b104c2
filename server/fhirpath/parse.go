package fhirpath

import (
	"fmt"
	"strconv"
	"strings"
)

// Operator precedence, loosest first.
const (
	precImplies = iota + 1
	precOr
	precAnd
	precMembership
	precEquality
	precInequality
	precUnion
	precType
	precAdditive
	precMultiplicative
	precUnary
)

type opKind uint8

const (
	opImplies opKind = iota + 1
	opOr
	opXor
	opAnd
	opIn
	opContains
	opEq
	opNe
	opEquiv
	opNotEquiv
	opLt
	opLe
	opGt
	opGe
	opUnion
	opIs
	opAs
	opAdd
	opSub
	opConcat
	opMul
	opDiv
	opIntDiv
	opMod
)

var binaryOps = map[string]struct {
	op   opKind
	prec int
}{
	"implies": {opImplies, precImplies},
	"or":      {opOr, precOr}, "xor": {opXor, precOr},
	"and": {opAnd, precAnd},
	"in":  {opIn, precMembership}, "contains": {opContains, precMembership},
	"=": {opEq, precEquality}, "!=": {opNe, precEquality}, "~": {opEquiv, precEquality}, "!~": {opNotEquiv, precEquality},
	"<": {opLt, precInequality}, "<=": {opLe, precInequality}, ">": {opGt, precInequality}, ">=": {opGe, precInequality},
	"|":  {opUnion, precUnion},
	"is": {opIs, precType}, "as": {opAs, precType},
	"+": {opAdd, precAdditive}, "-": {opSub, precAdditive}, "&": {opConcat, precAdditive},
	"*": {opMul, precMultiplicative}, "/": {opDiv, precMultiplicative},
	"div": {opIntDiv, precMultiplicative}, "mod": {opMod, precMultiplicative},
}

var opNames = func() map[opKind]string {
	m := map[opKind]string{}
	for k, v := range binaryOps {
		m[v.op] = k
	}
	return m
}()

type parser struct {
	src  string
	toks []token
	i    int
}

func parse(src string) (node, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src, toks: toks}
	n, err := p.expr(1)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, p.errorf(t.pos, "unexpected %s", describe(t))
	}
	return n, nil
}

func describe(t token) string {
	switch t.kind {
	case tokEOF:
		return "end of expression"
	case tokString:
		return "string '" + t.text + "'"
	}
	return "'" + t.text + "'"
}

func (p *parser) errorf(pos int, format string, args ...any) error {
	return newCompileError(p.src, pos, format, args...)
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) advance() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) isOp(text string) bool {
	t := p.peek()
	return t.kind == tokOp && t.text == text
}

func (p *parser) expect(text string) error {
	t := p.peek()
	if t.kind != tokOp || t.text != text {
		return p.errorf(t.pos, "expected '%s', found %s", text, describe(t))
	}
	p.i++
	return nil
}

// binaryOp returns the binary operator at the current token, if any.
func (p *parser) binaryOp() (opKind, int, bool) {
	t := p.peek()
	if t.kind == tokOp || (t.kind == tokIdent && !t.quoted) {
		if o, ok := binaryOps[t.text]; ok {
			return o.op, o.prec, true
		}
	}
	return 0, 0, false
}

func (p *parser) expr(minPrec int) (node, error) {
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		op, prec, ok := p.binaryOp()
		if !ok || prec < minPrec {
			return left, nil
		}
		t := p.advance()
		if op == opIs || op == opAs {
			name, pos, err := p.qualifiedName()
			if err != nil {
				return nil, err
			}
			ts, ok := resolveTypeSpec(name)
			if !ok {
				return nil, p.errorf(pos, "unknown type %s", name)
			}
			left = &typeOpNode{is: op == opIs, x: left, spec: ts, pos: t.pos}
			continue
		}
		right, err := p.expr(prec + 1)
		if err != nil {
			return nil, err
		}
		left = &binaryNode{op: op, l: left, r: right, pos: t.pos}
	}
}

func (p *parser) qualifiedName() (string, int, error) {
	t := p.advance()
	if t.kind != tokIdent {
		return "", t.pos, p.errorf(t.pos, "expected a type name, found %s", describe(t))
	}
	name := t.text
	for p.isOp(".") && p.toks[p.i+1].kind == tokIdent {
		p.i++
		name += "." + p.advance().text
	}
	return name, t.pos, nil
}

func (p *parser) unary() (node, error) {
	if p.isOp("+") || p.isOp("-") {
		t := p.advance()
		x, err := p.expr(precUnary)
		if err != nil {
			return nil, err
		}
		if t.text == "+" {
			return &unaryNode{x: x, pos: t.pos}, nil
		}
		// Fold a negative number literal (but not -1.f(), which negates f).
		if lit, ok := x.(*literalNode); ok && lit.number {
			if n, ok := negateLiteral(lit); ok {
				return n, nil
			}
		}
		return &unaryNode{neg: true, x: x, pos: t.pos}, nil
	}
	return p.postfix()
}

func (p *parser) postfix() (node, error) {
	n, err := p.term()
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.isOp("."):
			p.advance()
			t := p.advance()
			if t.kind != tokIdent {
				return nil, p.errorf(t.pos, "expected a name after '.', found %s", describe(t))
			}
			if p.isOp("(") {
				n, err = p.call(n, t)
				if err != nil {
					return nil, err
				}
				continue
			}
			n = &memberNode{target: n, name: t.text, pos: t.pos}
		case p.isOp("["):
			t := p.advance()
			idx, err := p.expr(1)
			if err != nil {
				return nil, err
			}
			if err := p.expect("]"); err != nil {
				return nil, err
			}
			n = &indexerNode{target: n, index: idx, pos: t.pos}
		default:
			return n, nil
		}
	}
}

func (p *parser) term() (node, error) {
	t := p.advance()
	switch t.kind {
	case tokEOF:
		return nil, p.errorf(t.pos, "unexpected end of expression")
	case tokNumber:
		return p.number(t)
	case tokString:
		return &literalNode{items: []item{{v: t.text, t: tString}}}, nil
	case tokDate:
		return p.dateLiteral(t)
	case tokEnv:
		return &envNode{name: t.text, pos: t.pos}, nil
	case tokSpecial:
		return &specialNode{name: t.text}, nil
	case tokIdent:
		if !t.quoted {
			switch t.text {
			case "true", "false":
				return &literalNode{items: []item{{v: t.text == "true", t: tBoolean}}}, nil
			}
		}
		if p.isOp("(") {
			return p.call(nil, t)
		}
		return newIdentNode(t.text, t.pos), nil
	case tokOp:
		switch t.text {
		case "(":
			n, err := p.expr(1)
			if err != nil {
				return nil, err
			}
			if err := p.expect(")"); err != nil {
				return nil, err
			}
			return &parenNode{x: n}, nil
		case "{":
			if err := p.expect("}"); err != nil {
				return nil, err
			}
			return &literalNode{}, nil
		}
	}
	return nil, p.errorf(t.pos, "unexpected %s", describe(t))
}

func (p *parser) number(t token) (node, error) {
	var it item
	if strings.Contains(t.text, ".") {
		d, ok := parseDecimal(t.text)
		if !ok {
			return nil, p.errorf(t.pos, "bad number %s", t.text)
		}
		it = item{v: d, t: tDecimal}
	} else {
		n, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			d, ok := parseDecimal(t.text)
			if !ok {
				return nil, p.errorf(t.pos, "bad number %s", t.text)
			}
			it = item{v: d, t: tDecimal}
		} else {
			it = item{v: n, t: tInteger}
		}
	}
	// A quantity: a number followed by a unit string or a calendar keyword.
	next := p.peek()
	if next.kind == tokString || (next.kind == tokIdent && !next.quoted && isCalendarKeyword(next.text)) {
		p.advance()
		d, _ := toDecimal(it)
		return &literalNode{items: []item{{v: quantity{v: d, unit: next.text}, t: tQuantity}}, number: true}, nil
	}
	return &literalNode{items: []item{it}, number: true}, nil
}

func negateLiteral(lit *literalNode) (node, bool) {
	if len(lit.items) != 1 {
		return nil, false
	}
	it := lit.items[0]
	switch v := it.v.(type) {
	case int64:
		it.v = -v
	case decimal:
		v.f = -v.f
		if v.f == 0 {
			v.f = 0
		}
		it.v = v
	case quantity:
		v.v.f = -v.v.f
		it.v = v
	default:
		return nil, false
	}
	return &literalNode{items: []item{it}, number: true}, true
}

func (p *parser) dateLiteral(t token) (node, error) {
	text := t.text
	var tm temporal
	var ok bool
	var typ *typeDef
	switch {
	case strings.HasPrefix(text, "T"):
		tm, ok = parseTemporal(text[1:], kindTime)
		typ = tTime
	case strings.Contains(text, "T"):
		tm, ok = parseTemporal(text, kindDateTime)
		typ = tDateTime
	default:
		tm, ok = parseTemporal(text, kindDate)
		typ = tDate
	}
	if !ok {
		return nil, p.errorf(t.pos, "malformed date/time literal @%s", text)
	}
	return &literalNode{items: []item{{v: tm.value(), t: typ}}}, nil
}

// call parses the arguments of a function call and binds the function.
func (p *parser) call(target node, name token) (node, error) {
	if err := p.expect("("); err != nil {
		return nil, err
	}
	var args []node
	if !p.isOp(")") {
		for {
			a, err := p.expr(1)
			if err != nil {
				return nil, err
			}
			args = append(args, a)
			if p.isOp(",") {
				p.advance()
				continue
			}
			break
		}
	}
	if err := p.expect(")"); err != nil {
		return nil, err
	}
	fn, ok := functions[name.text]
	if !ok {
		return nil, p.errorf(name.pos, "unknown function %s()", name.text)
	}
	if len(args) < fn.min || len(args) > fn.max {
		want := fmt.Sprint(fn.min)
		if fn.max != fn.min {
			want = fmt.Sprintf("%d to %d", fn.min, fn.max)
		}
		return nil, p.errorf(name.pos, "%s() takes %s arguments, not %d", name.text, want, len(args))
	}
	c := &callNode{target: target, fn: fn, args: args, pos: name.pos}
	if fn.typeArg {
		q, ok := qualifiedNameOf(args[0])
		if !ok {
			return nil, p.errorf(name.pos, "%s() expects a type name", name.text)
		}
		ts, ok := resolveTypeSpec(q)
		if !ok {
			return nil, p.errorf(name.pos, "unknown type %s", q)
		}
		c.spec = ts
	}
	if fn.prepare != nil {
		if err := fn.prepare(c); err != nil {
			return nil, p.errorf(name.pos, "%s(): %v", name.text, err)
		}
	}
	return c, nil
}

// qualifiedNameOf reads a type name written as an expression: Quantity,
// FHIR.Patient, System.`Boolean`.
func qualifiedNameOf(n node) (string, bool) {
	switch x := n.(type) {
	case *identNode:
		return x.name, true
	case *memberNode:
		q, ok := qualifiedNameOf(x.target)
		return q + "." + x.name, ok
	}
	return "", false
}
