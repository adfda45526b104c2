package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parcours-sante/parcours/mappings/gen"
	"github.com/parcours-sante/parcours/server/audit"
	"github.com/parcours-sante/parcours/server/auth"
	"github.com/parcours-sante/parcours/server/store"
)

const ingestCrashEnv = "PARCOURS_INGEST_CRASH_DIR"

// TestIngestCrashChild is the hub TestIngestCrash kills: a dev hub on the
// directory of ingestCrashEnv, serving on a free port it prints, and
// printing "parts N" once an upload has committed a part of its file
// without ending it (an ingest job is open: it begins with its first
// part's commit) and the pathway worker has derived N EpisodeOfCares.
func TestIngestCrashChild(t *testing.T) {
	dir := os.Getenv(ingestCrashEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestIngestCrash")
	}
	s, err := New(Config{DataDir: dir, Dev: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Println("child: new:", err)
		os.Exit(2)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("child: listen:", err)
		os.Exit(2)
	}
	go http.Serve(l, s.Handler())
	fmt.Println("addr", l.Addr().String())
	var since time.Time // when the job was first seen open
	for {
		open, episodes := false, 0
		s.db.View(func(tx *store.Tx) error {
			open, episodes = len(tx.Jobs()) > 0, len(tx.IDs("EpisodeOfCare"))
			return nil
		})
		if open && since.IsZero() {
			since = time.Now()
		}
		// Preferably once the pathway worker has derived episodes from
		// the parts stored.
		if open && (episodes > 0 || time.Since(since) > 2*time.Second) {
			fmt.Println("parts", episodes)
			select {} // until killed
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestIngestCrash: a hub killed (SIGKILL) while it stores a native file in
// parts, some parts committed, restarts with nothing of the file: the open
// job is rolled back before the hub serves, the EpisodeOfCares derived
// from its parts go, and the decision log still verifies. (The decision
// records of a part may or may not have been durable at the kill: a
// part's records are appended after its commit, and the job ends only
// once all of them are durable, so nothing of the file outlives a crash
// without its records.)
func TestIngestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills a child hub during an upload; not in -short")
	}
	dir := t.TempDir()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestIngestCrashChild$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), ingestCrashEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	next := func() string {
		if !lines.Scan() {
			t.Fatalf("child ended: %v", lines.Err())
		}
		return lines.Text()
	}
	addr, ok := strings.CutPrefix(next(), "addr ")
	if !ok {
		t.Fatalf("child did not print its address")
	}
	secret, err := auth.DevSecret(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	var claims auth.Claims
	for _, c := range auth.DevUsers() {
		if c.ActorType == uploader[gen.SourceCity].actor {
			claims = c
		}
	}
	tok, err := auth.Mint(secret, claims, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	// Upload a file of many parts; kill the hub once some are stored.
	file := generated(t, gen.SourceCity, 20*ingestChunkEntries, 5)
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/fhir/$ingest?source="+gen.SourceCity, bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("X-Purpose-Of-Use", uploader[gen.SourceCity].purpose)
	req.Header.Set("Content-Type", "text/csv")
	answered := make(chan string, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- "no answer: " + err.Error()
			return
		}
		resp.Body.Close()
		answered <- resp.Status
	}()
	if line, ok := strings.CutPrefix(next(), "parts "); !ok {
		t.Fatalf("child: %q", line)
	} else {
		t.Logf("killed with a part stored and %s EpisodeOfCares derived from it", line)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if got := <-answered; !strings.HasPrefix(got, "no answer") {
		t.Fatalf("the upload was answered (%s) before the kill: nothing to recover", got)
	}

	// Restart on the same directory.
	s, err := New(Config{DataDir: dir, Dev: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.WaitPathways()
	s.db.View(func(tx *store.Tx) error {
		if jobs := tx.Jobs(); len(jobs) != 0 {
			t.Errorf("open jobs after the restart: %v", jobs)
		}
		for _, typ := range []string{"Patient", "Encounter", "Observation", "MedicationDispense", "Practitioner", "EpisodeOfCare"} {
			n := 0
			for _, id := range tx.IDs(typ) {
				if r, err := tx.Get(typ, id); err == nil && !r.Deleted() {
					n++
				}
			}
			if n != 0 {
				t.Errorf("%d %s stored after the restart, want none of the killed upload", n, typ)
			}
		}
		if v := audit.Verify(tx); !v.OK {
			t.Errorf("decision log after the restart: %+v", v)
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(dir, "parcours.db")); err != nil {
		t.Fatal(err)
	}
}
