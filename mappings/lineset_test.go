package mappings

import "testing"

func TestLineSet(t *testing.T) {
	var s lineSet
	lines := []int{0, 1, 63, 64, 65, 1000, 123456}
	for _, l := range lines {
		s.add(l)
	}
	s.add(-1)
	for l := -2; l < 130000; l++ {
		want := false
		for _, x := range lines {
			want = want || x == l
		}
		if s.has(l) != want {
			t.Fatalf("has(%d) = %v, want %v", l, s.has(l), want)
		}
	}
	if n := len(s.bits); n > 2*(123456/64+1) {
		t.Errorf("%d words for lines up to 123456", n)
	}
}
