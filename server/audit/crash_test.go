package audit

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/parcours-sante/parcours/server/store"
)

// crashEnv carries the database path to the child of TestCrashKill9, and
// crashJournalEnv the journal's path when the child appends through one.
const (
	crashEnv        = "PARCOURS_AUDIT_CRASH_CHILD"
	crashJournalEnv = "PARCOURS_AUDIT_CRASH_JOURNAL"
)

// crashJournal is the journal of the crash test: a small ring, so that
// the child comes round it (and grows it) many times before it is killed.
var crashJournal = Options{Size: minJournal, MaxSize: 4 * minJournal, ApplyEvery: 3 * time.Millisecond}

// TestCrashChild is the writer TestCrashKill9 kills: 16 goroutines append
// decision records, each printing "ack <decision_id>" once Append has
// returned for it, until the process is killed. With a journal, one more
// goroutine appends records inside data writes (AppendTx), as an upload
// does, between the journal's groups.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("only runs as the child of TestCrashKill9")
	}
	db, err := store.Open(path, store.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open:", err)
		os.Exit(2)
	}
	l := New(db)
	workers := 16
	if jpath := os.Getenv(crashJournalEnv); jpath != "" {
		if l, err = Open(db, jpath, crashJournal); err != nil {
			fmt.Fprintln(os.Stderr, "child: open journal:", err)
			os.Exit(2)
		}
		workers++
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var n atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for {
				r := sample(int(n.Add(1)))
				// Now and then a request with several decisions (a batch).
				recs := []Record{r}
				if w == 0 {
					recs = append(recs, sample(int(n.Add(1))), sample(int(n.Add(1))))
				}
				var err error
				if w == 16 {
					err = db.Update(context.Background(), func(tx *store.Tx) error {
						if _, err := tx.Put("Basic", store.NewID(), map[string]any{"resourceType": "Basic"}); err != nil {
							return err
						}
						return l.AppendTx(tx, recs...)
					})
				} else {
					err = l.Append(context.Background(), recs...)
				}
				if err != nil {
					fmt.Fprintf(os.Stderr, "child: append of worker %d: %v\n", w, err)
					os.Exit(4)
				}
				mu.Lock()
				for _, r := range recs {
					fmt.Fprintln(out, "ack", r.DecisionID)
				}
				err = out.Flush()
				mu.Unlock()
				if err != nil {
					os.Exit(3) // the parent is gone
				}
			}
		})
	}
	wg.Wait()
}

// TestCrashKill9 proves that acknowledged decision records survive kill
// -9 and that the chain still verifies: it runs TestCrashChild in a child
// process, kills it with SIGKILL after some acknowledgements, reopens the
// file (and the journal, whose records join the chain then) and finds
// every acknowledged record, with and without a journal.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills a child process appending for a few seconds; not in -short")
	}
	for _, journal := range []bool{false, true} {
		for _, after := range []int{300, 3000} {
			t.Run(fmt.Sprintf("journal=%v/after=%d", journal, after), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "crash.db")
				jpath := ""
				if journal {
					jpath = filepath.Join(filepath.Dir(path), "audit.wal")
				}
				acks := killChild(t, path, jpath, after)
				t.Logf("%d records acknowledged before SIGKILL", len(acks))
				checkAcks(t, path, jpath, acks)
			})
		}
	}
}

// killChild starts the child on path (and journal jpath, if not empty),
// kills it once it has acknowledged after records (or after 20 s, with
// what it has acknowledged by then) and returns every decision id it
// acknowledged before dying.
func killChild(t *testing.T, path, jpath string, after int) []string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), crashEnv+"="+path, crashJournalEnv+"="+jpath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var acks []string
	take := func(line string) {
		if id, ok := strings.CutPrefix(line, "ack "); ok && id != "" {
			acks = append(acks, id)
		} else {
			t.Errorf("child printed %q", line)
		}
	}
	deadline := time.After(20 * time.Second) // a stopping point, not an assertion
read:
	for len(acks) < after {
		select {
		case line, ok := <-lines:
			if !ok {
				break read
			}
			take(line)
		case <-deadline:
			break read
		}
	}
	_ = cmd.Process.Kill()
	// Records acknowledged between the last line read and the kill are
	// still in the pipe: they count too.
	for line := range lines {
		take(line)
	}
	_ = cmd.Wait()
	if cmd.ProcessState.Exited() {
		t.Fatalf("the child exited by itself (%v) instead of being killed; stderr:\n%s", cmd.ProcessState, stderr.String())
	}
	if len(acks) == 0 {
		t.Fatalf("the child acknowledged nothing; stderr:\n%s", stderr.String())
	}
	return acks
}

// checkAcks reopens the killed child's file (and journal): bbolt finds it
// consistent, every acknowledged record is there once, the chain
// verifies, and the log takes new records that verify too.
func checkAcks(t *testing.T, path, jpath string, acks []string) {
	t.Helper()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer db.Close()
	l := New(db)
	if jpath != "" {
		before := view(t, db, Len)
		if l, err = Open(db, jpath, crashJournal); err != nil {
			t.Fatalf("reopen the journal after kill -9: %v", err)
		}
		defer l.Close()
		t.Logf("%d records joined the chain from the journal", view(t, db, Len)-before)
	}
	if err := db.Bolt().View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt check: %v", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	res := view(t, db, Verify)
	if !res.OK {
		t.Fatalf("chain after kill -9: %+v", res)
	}
	if res.Records < len(acks) {
		t.Errorf("%d records in the log, %d acknowledged", res.Records, len(acks))
	}
	seqs := map[uint64]string{}
	for _, id := range acks {
		r := view(t, db, func(tx *store.Tx) Record { r, _ := Find(tx, id); return r })
		if r.DecisionID != id {
			t.Errorf("acknowledged decision %s lost", id)
			continue
		}
		if other, dup := seqs[r.Seq]; dup {
			t.Errorf("decisions %s and %s both at seq %d", id, other, r.Seq)
		}
		seqs[r.Seq] = id
	}
	if err := l.Append(context.Background(), sample(0)); err != nil {
		t.Fatalf("append after recovery: %v", err)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if res := view(t, db, Verify); !res.OK {
		t.Errorf("chain after recovery and one more append: %+v", res)
	}
}
