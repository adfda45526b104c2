package pathway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Issue is one problem of a rules or pathways file, at a JSON path such as
// $.window.end.days or $[2].expected[0].match.codes[1].system.
type Issue struct {
	Path    string
	Message string
}

// DataError reports every issue found in a rules or pathways file.
type DataError struct {
	Issues []Issue
}

func (e *DataError) Error() string {
	var b strings.Builder
	for i, is := range e.Issues {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(is.Path)
		b.WriteString(": ")
		b.WriteString(is.Message)
	}
	return b.String()
}

// issues collects problems while decoding and validating.
type issues []Issue

func (is *issues) add(path, format string, args ...any) {
	*is = append(*is, Issue{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (is issues) err() error {
	if len(is) == 0 {
		return nil
	}
	return &DataError{Issues: is}
}

// parseJSON reads one JSON value (numbers kept as json.Number).
func parseJSON(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, &DataError{Issues: []Issue{{Path: "$", Message: "invalid JSON: " + syntaxDetail(err, data)}}}
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, &DataError{Issues: []Issue{{Path: "$", Message: "invalid JSON: data after the top-level value"}}}
	}
	return v, nil
}

func syntaxDetail(err error, data []byte) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
		return fmt.Sprintf("%v (line %d)", se, line)
	}
	return err.Error()
}

// decodeStrict fills dst (a pointer) from a generic JSON value, reporting
// unknown fields and wrong types with their path.
func decodeStrict(path string, src any, dst reflect.Value, is *issues) {
	switch dst.Kind() {
	case reflect.Pointer:
		if src == nil {
			return
		}
		v := reflect.New(dst.Type().Elem())
		decodeStrict(path, src, v.Elem(), is)
		dst.Set(v)
	case reflect.Struct:
		m, ok := src.(map[string]any)
		if !ok {
			is.add(path, "must be an object")
			return
		}
		fields := fieldsOf(dst.Type())
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			i, ok := fields[k]
			if !ok {
				is.add(path+"."+k, "unknown field")
				continue
			}
			decodeStrict(path+"."+k, m[k], dst.Field(i), is)
		}
	case reflect.Slice:
		if src == nil {
			return
		}
		l, ok := src.([]any)
		if !ok {
			is.add(path, "must be an array")
			return
		}
		s := reflect.MakeSlice(dst.Type(), len(l), len(l))
		for i, e := range l {
			decodeStrict(path+"["+strconv.Itoa(i)+"]", e, s.Index(i), is)
		}
		dst.Set(s)
	case reflect.String:
		s, ok := src.(string)
		if !ok {
			is.add(path, "must be a string")
			return
		}
		dst.SetString(s)
	case reflect.Bool:
		b, ok := src.(bool)
		if !ok {
			is.add(path, "must be true or false")
			return
		}
		dst.SetBool(b)
	case reflect.Int:
		n, ok := src.(json.Number)
		if !ok {
			is.add(path, "must be an integer")
			return
		}
		i, err := n.Int64()
		if err != nil || i > math.MaxInt32 || i < math.MinInt32 {
			is.add(path, "must be an integer between %d and %d", math.MinInt32, math.MaxInt32)
			return
		}
		dst.SetInt(i)
	case reflect.Float64:
		n, ok := src.(json.Number)
		if !ok {
			is.add(path, "must be a number")
			return
		}
		f, err := n.Float64()
		if err != nil || math.IsInf(f, 0) {
			is.add(path, "must be a finite number")
			return
		}
		dst.SetFloat(f)
	default:
		is.add(path, "unsupported type %s", dst.Type())
	}
}

var fieldCache sync.Map // reflect.Type → map[string]int

// fieldsOf maps the JSON names of a struct's exported fields to their index.
func fieldsOf(t reflect.Type) map[string]int {
	if v, ok := fieldCache.Load(t); ok {
		return v.(map[string]int)
	}
	m := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = i
	}
	fieldCache.Store(t, m)
	return m
}
