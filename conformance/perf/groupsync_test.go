package perf

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestGroupSync(t *testing.T) {
	dir := t.TempDir()
	g, err := NewGroupSync(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, "groupsync-probe")); err != nil || st.Size() != groupSyncRing {
		t.Fatalf("ring file: %v, %v", st, err)
	}
	served := 0
	h := g.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { served++; w.WriteHeader(http.StatusNoContent) }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusNoContent || served != 1 {
		t.Fatalf("handler behind the sync: status %d, served %d", rec.Code, served)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- g.Wait() }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "groupsync-probe")); !os.IsNotExist(err) {
		t.Fatalf("ring file left after Close: %v", err)
	}
}
