// Package jsontest holds what the tests of hand-written JSON encoders
// share: random strings made of what encoding/json escapes and what it
// does not, and a filler that sets any value to random content found by
// reflection, so that a field added to an encoded type is filled (and
// tested) too.
package jsontest

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
)

// Pieces are the parts random strings are made of: what encoding/json
// escapes (HTML characters, quotes, controls, U+2028/2029, invalid UTF-8)
// and what it does not (ASCII, accents, 0xE2 characters other than
// U+2028/2029, emoji, DEL).
var Pieces = []string{
	"a", "Observation", "Patient/p-0a1b", "TREAT", " ", "<", ">", "&", `"`, `\`, "/", "\b", "\f", "\n", "\r", "\t",
	"\x00", "\x01", "\x1f", "\x7f", "\u2028", "\u2029", "é", "€", "’", "–", "😀", "\uFFFD",
	"\xff", "\xe2\x80", "\xe2", "\xed\xa0\x80", "\xc3", "\xf0\x9f\x98", `\u2028`, "<script>",
}

// String is a random string of up to 7 pieces (empty at times).
func String(rnd *rand.Rand) string {
	var sb strings.Builder
	for range rnd.IntN(8) {
		sb.WriteString(Pieces[rnd.IntN(len(Pieces))])
	}
	return sb.String()
}

var rawType = reflect.TypeFor[json.RawMessage]()

// Fill sets v to random content: every string, number and bool random
// (zero at times), every list, map and pointer nil, empty or not. With
// full, nothing is zero, nil or empty. A json.RawMessage gets raw(rnd)
// (with full, until it is valid JSON); raw may be nil when v holds none.
// A kind it has no filler for panics, naming the type: teach it, and the
// encoder under test.
func Fill(rnd *rand.Rand, v reflect.Value, full bool, raw func(*rand.Rand) json.RawMessage) {
	zero := !full && rnd.IntN(4) == 0
	switch v.Kind() {
	case reflect.String:
		if !zero {
			s := String(rnd)
			for full && s == "" {
				s = String(rnd)
			}
			v.SetString(s)
		}
	case reflect.Bool:
		v.SetBool(full || rnd.IntN(2) == 0)
	case reflect.Int, reflect.Int64:
		if !zero {
			v.SetInt(rnd.Int64N(1<<40) - 1<<39 | 1)
		}
	case reflect.Uint64:
		if !zero {
			v.SetUint(rnd.Uint64() | 1)
		}
	case reflect.Slice:
		if v.Type() == rawType && raw != nil {
			b := raw(rnd)
			for full && !json.Valid(b) {
				b = raw(rnd)
			}
			v.SetBytes(b)
			return
		}
		if zero {
			return
		}
		n := rnd.IntN(4)
		if full {
			n++
		}
		v.Set(reflect.MakeSlice(v.Type(), n, n))
		for i := range n {
			Fill(rnd, v.Index(i), full, raw)
		}
	case reflect.Map:
		if zero {
			return
		}
		v.Set(reflect.MakeMap(v.Type()))
		n := rnd.IntN(14)
		if full {
			n++
		}
		for range n {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			Fill(rnd, k, full, raw)
			Fill(rnd, e, full, raw)
			v.SetMapIndex(k, e)
		}
	case reflect.Pointer:
		if zero {
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		Fill(rnd, v.Elem(), full, raw)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				Fill(rnd, v.Field(i), full, raw)
			}
		}
	default:
		panic("jsontest.Fill: no filler for " + v.Type().String() + ": teach it, and the encoder under test")
	}
}
