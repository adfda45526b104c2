package store

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.etcd.io/bbolt"
)

// crashEnv carries the database path to the child process of TestCrashKill9.
const crashEnv = "PARCOURS_CRASH_CHILD"

// crashBody is the body the child writes as version v of Patient/id: the
// parent rebuilds it from an acknowledgement line to check the stored JSON.
func crashBody(id string, v uint64) map[string]any {
	return map[string]any{
		"resourceType": "Patient",
		"active":       true,
		"name":         []any{map[string]any{"family": id, "given": []any{fmt.Sprintf("v%d", v)}}},
		"text": map[string]any{
			"status": "generated",
			"div":    `<div xmlns="http://www.w3.org/1999/xhtml">` + strings.Repeat(id, 6) + `</div>`,
		},
	}
}

// crashOptions index each patient's family (its id) and given name (its
// version), with a small overlay: the kill finds index writes both in the
// overlay (indexlog) and merged into the index bucket.
var crashOptions = Options{Indexer: crashIndexer, IndexOverlay: 256}

func crashIndexer(_ string, res map[string]any) []IndexEntry {
	name := res["name"].([]any)[0].(map[string]any)
	return []IndexEntry{{Param: "family", Value: name["family"].(string)}, {Param: "given", Value: name["given"].([]any)[0].(string)}}
}

// ack is one acknowledged write as the child prints it:
// "ack Patient/<id>/<version>/<lastUpdated µs>/<op>".
type ack struct {
	typ, id     string
	version     uint64
	lastUpdated int64
	op          Op
}

func (a ack) String() string {
	return fmt.Sprintf("ack %s/%s/%d/%d/%c", a.typ, a.id, a.version, a.lastUpdated, a.op)
}

func parseAck(line string) (ack, bool) {
	rest, ok := strings.CutPrefix(line, "ack ")
	f := strings.Split(rest, "/")
	if !ok || len(f) != 5 || len(f[4]) != 1 {
		return ack{}, false
	}
	v, err1 := strconv.ParseUint(f[2], 10, 64)
	us, err2 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil {
		return ack{}, false
	}
	return ack{typ: f[0], id: f[1], version: v, lastUpdated: us, op: Op(f[4][0])}, true
}

// TestCrashChild is the writer TestCrashKill9 kills: 16 goroutines create,
// update and now and then delete patients, printing each write only once
// Update has returned nil for it, until the process is killed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("only runs as the child of TestCrashKill9")
	}
	db, err := Open(path, crashOptions)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	emit := func(a ack) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(out, a)
		if err := out.Flush(); err != nil {
			os.Exit(3) // the parent is gone
		}
	}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			versions := map[string]uint64{} // acknowledged versions of live resources
			var ids []string
			for i := 0; ; i++ {
				var id string
				var del bool
				switch n := rng.IntN(10); {
				case len(ids) == 0 || n < 5:
					id = NewID()
					ids = append(ids, id)
				case n == 9:
					id, del = ids[rng.IntN(len(ids))], true
				default:
					id = ids[rng.IntN(len(ids))]
				}
				body := crashBody(id, versions[id]+1)
				var r Resource
				err := db.Update(context.Background(), func(tx *Tx) (err error) {
					if del {
						r, err = tx.Delete("Patient", id)
					} else {
						r, err = tx.Put("Patient", id, body)
					}
					return err
				})
				if err != nil {
					fmt.Fprintf(os.Stderr, "child: write %d of worker %d: %v\n", i, w, err)
					os.Exit(4)
				}
				emit(ack{r.Type, r.ID, r.Version, r.LastUpdated.UnixMicro(), r.Op})
				versions[id] = r.Version
				if del {
					delete(versions, id)
					ids = slices.DeleteFunc(ids, func(x string) bool { return x == id })
				}
			}
		})
	}
	wg.Wait()
}

// TestCrashKill9 proves that acknowledged writes survive kill -9: it runs
// TestCrashChild in a child process, kills it with SIGKILL after some
// acknowledgements, reopens the file and reads every acknowledged version
// back.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills a child process writing for a few seconds; not in -short")
	}
	for _, after := range []int{500, 2000, 5000} {
		t.Run(fmt.Sprintf("after=%d", after), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "crash.db")
			acks := killChild(t, path, after)
			t.Logf("%d writes acknowledged before SIGKILL", len(acks))
			checkAcks(t, path, acks)
		})
	}
}

// killChild starts the child on path, kills it once it has acknowledged
// after writes (or after 20 s, whatever it has acknowledged by then) and
// returns every acknowledgement it printed before dying.
func killChild(t *testing.T, path string, after int) []ack {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
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
	var acks []ack
	take := func(line string) {
		if a, ok := parseAck(line); ok {
			acks = append(acks, a)
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
	_ = cmd.Process.Kill() // fails only if the child already exited: see below
	// Writes acknowledged between the last line read and the kill are
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

// checkAcks reopens the killed child's file and checks that every
// acknowledged version reads back intact, that the log lists them all, that
// bbolt finds the file consistent and that the store takes new writes.
func checkAcks(t *testing.T, path string, acks []ack) {
	t.Helper()
	db, err := Open(path, crashOptions)
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()

	if err := db.Bolt().View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt check: %v", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	latest := map[string]uint64{}
	for _, a := range acks {
		latest[a.id] = max(latest[a.id], a.version)
		var got Resource
		if err := db.View(func(tx *Tx) (err error) { got, err = tx.Version(a.typ, a.id, a.version); return err }); err != nil {
			t.Errorf("%s: %v", a, err)
			continue
		}
		want := Resource{Type: a.typ, ID: a.id, Version: a.version, LastUpdated: time.UnixMicro(a.lastUpdated).UTC(), Op: a.op}
		if diff := cmp.Diff(want, got, noJSON); diff != "" {
			t.Errorf("%s (-want +got):\n%s", a, diff)
			continue
		}
		checkJSON(t, got)
		if got.Deleted() {
			continue
		}
		wantBody := crashBody(a.id, a.version)
		gotBody := decode(t, got.JSON)
		delete(gotBody, "id")
		delete(gotBody, "meta")
		if diff := cmp.Diff(wantBody, gotBody); diff != "" {
			t.Errorf("%s body (-want +got):\n%s", a, diff)
		}
	}
	// Each resource has one writer that waits for each answer: the current
	// version is the last acknowledged one, or one more whose answer the
	// kill interrupted.
	for id, v := range latest {
		var cur Resource
		if err := db.View(func(tx *Tx) (err error) { cur, err = tx.Get("Patient", id); return err }); err != nil {
			t.Errorf("Patient/%s: %v", id, err)
			continue
		}
		if cur.Version != v && cur.Version != v+1 {
			t.Errorf("Patient/%s is at version %d, last acknowledged %d", id, cur.Version, v)
		}
	}

	// The index holds exactly the entries of the current versions (the
	// overlay rebuilt from indexlog over the index bucket), and finds each.
	db.View(func(tx *Tx) error {
		if diff := cmp.Diff(listed(tx), visible(tx)); diff != "" {
			t.Errorf("index after kill -9 (-indexof lists +visible):\n%s", diff)
		}
		for id := range latest {
			cur, err := tx.Get("Patient", id)
			if err != nil {
				continue
			}
			family, given := tx.Lookup("Patient", "family", id), tx.Lookup("Patient", "given", fmt.Sprintf("v%d", cur.Version))
			if cur.Deleted() != (len(family) == 0) || cur.Deleted() != !slices.Contains(given, id) {
				t.Errorf("Patient/%s v%d (deleted %v): found by family %v, by given %v", id, cur.Version, cur.Deleted(), family, len(given))
			}
		}
		return nil
	})

	// The system history lists every acknowledged version, and every
	// entry of the log resolves to a stored version.
	logged := map[string]bool{}
	total := -1
	for q := (HistoryQuery{Count: 1000}); ; {
		p, err := db.History(q)
		if err != nil {
			t.Fatal(err)
		}
		total = p.Total
		for _, r := range p.Versions {
			logged[fmt.Sprintf("%s/%s/%d", r.Type, r.ID, r.Version)] = true
		}
		if p.Next == 0 {
			break
		}
		q.Before = p.Next
	}
	if len(logged) != total {
		t.Errorf("system history: %d distinct versions listed, Total %d", len(logged), total)
	}
	for _, a := range acks {
		if !logged[fmt.Sprintf("%s/%s/%d", a.typ, a.id, a.version)] {
			t.Errorf("%s missing from the system history", a)
		}
	}

	// The store takes writes again.
	id := NewID()
	w := put(t, db, "Patient", id, crashBody(id, 1))
	if r, err := db.Read("Patient", id); err != nil || r.Version != w.Version {
		t.Errorf("write after recovery: Read = v%d, %v; want v%d", r.Version, err, w.Version)
	}
}
