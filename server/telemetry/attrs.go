package telemetry

import (
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// maxAttrKeys is the most keys an AttrSet takes.
const maxAttrKeys = 3

// maxAttrSets bounds the combinations an AttrSet keeps: values beyond are
// built on each call (a metric label fed by client input stays bounded in
// memory here, whatever its cardinality in the exporter).
const maxAttrSets = 1024

// AttrSet memoises the measurement options of a fixed list of attribute
// keys by their values, so that recording a known combination allocates
// nothing. The options are those Attrs builds, in slices ready for an
// instrument's variadic options (instruments read them, never change
// them).
type AttrSet struct {
	keys []string
	mu   sync.RWMutex
	m    map[[maxAttrKeys]string]attrOptions
}

type attrOptions struct {
	add    []metric.AddOption
	record []metric.RecordOption
}

// NewAttrSet is the memo of the attributes named keys (at most three).
func NewAttrSet(keys ...string) *AttrSet {
	if len(keys) > maxAttrKeys {
		panic("telemetry: an AttrSet takes at most 3 keys")
	}
	return &AttrSet{keys: keys, m: map[[maxAttrKeys]string]attrOptions{}}
}

// Add returns the options of a counter's Add with the attributes of these
// values, given in the order of the keys.
func (a *AttrSet) Add(values ...string) []metric.AddOption { return a.of(values).add }

// Record is Add for a histogram's Record.
func (a *AttrSet) Record(values ...string) []metric.RecordOption { return a.of(values).record }

func (a *AttrSet) of(values []string) attrOptions {
	var k [maxAttrKeys]string
	copy(k[:], values)
	a.mu.RLock()
	o, ok := a.m[k]
	a.mu.RUnlock()
	if ok {
		return o
	}
	kvs := make([]attribute.KeyValue, len(a.keys))
	for i, key := range a.keys {
		kvs[i] = attribute.String(key, k[i])
	}
	opt := metric.WithAttributeSet(attribute.NewSet(kvs...))
	o = attrOptions{add: []metric.AddOption{opt}, record: []metric.RecordOption{opt}}
	a.mu.Lock()
	if len(a.m) < maxAttrSets {
		a.m[k] = o
	}
	a.mu.Unlock()
	return o
}
