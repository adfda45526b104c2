package load

import (
	"math"
	"math/bits"
	"time"
)

// A histogram counts latencies in nanoseconds in log-linear buckets: values
// below 2^(subBits+1) each get their own bucket, and every later power of two
// is split into 2^subBits equal buckets. A bucket's midpoint is within
// 1/2^(subBits+1) (0.4%) of any value in it. Values from 2^maxBits ns (about
// 18 minutes) up share the last bucket.
//
// A histogram is not safe for concurrent use; each worker owns its own and
// they are merged once the workers have stopped.
type histogram struct {
	counts [nBuckets]uint64
	total  uint64
}

const (
	subBits  = 7
	maxBits  = 40
	nBuckets = (maxBits - subBits + 1) << subBits
	maxValue = 1<<maxBits - 1
)

// bucketOf returns the index of the bucket holding v.
func bucketOf(v uint64) int {
	v = min(v, maxValue)
	shift := max(bits.Len64(v)-(subBits+1), 0)
	return shift<<subBits + int(v>>uint(shift))
}

// bucketValue returns the midpoint of bucket i, rounded up.
func bucketValue(i int) uint64 {
	if i < 2<<subBits {
		return uint64(i)
	}
	shift := i>>subBits - 1
	m := uint64(i - shift<<subBits)
	return m<<uint(shift) + (1<<uint(shift))>>1
}

func (h *histogram) record(d time.Duration) {
	h.counts[bucketOf(uint64(max(d, 0)))]++
	h.total++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
}

// quantile returns the q-quantile (0 < q ≤ 1) of the recorded values, never
// more than hi, the exact maximum the caller tracked alongside.
func (h *histogram) quantile(q float64, hi time.Duration) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketValue(i)), hi)
		}
	}
	return hi
}
