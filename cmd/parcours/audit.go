package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/parcours-sante/parcours/server/audit"
	"github.com/parcours-sante/parcours/server/store"
)

const auditUsage = `Usage: parcours audit <command> --data DIR [flags]

Offline tools over the decision log of a stopped hub's data directory:

  verify --data DIR [--anchor SEQ:HASH]     check the hash chain; exit 1 naming the first bad record
  export --data DIR [--since RFC3339]       print the records as NDJSON (OPA decision-log events)
  replay --data DIR --decision ID           re-evaluate a decision with its policy revision;
                                            exit 1 if it is not reproduced

Run 'parcours audit <command> --help' for the flags of a command.
`

// runAudit runs `parcours audit verify|export|replay`.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditUsage)
		return exitError(2)
	}
	switch args[0] {
	case "verify":
		return runAuditVerify(args[1:], stdout, stderr)
	case "export":
		return runAuditExport(args[1:], stdout, stderr)
	case "replay":
		return runAuditReplay(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, auditUsage)
		return nil
	default:
		fmt.Fprintf(stderr, "unknown audit command %q\n\n%s", args[0], auditUsage)
		return exitError(2)
	}
}

func runAuditVerify(args []string, stdout, stderr io.Writer) error {
	var data, anchor string
	fs := newFlags("audit verify --data DIR [--anchor SEQ:HASH]",
		"Verify the decision log's hash chain, offline (the hub stopped): every record's hash,\n"+
			"position and link to the previous one, the checkpoints and the head. Exit status 1\n"+
			"names the first bad record and whether it was edited, deleted, inserted or reordered.\n"+
			"Keep the printed head (or a checkpoint) outside the hub and pass it as --anchor later\n"+
			"to detect a rewrite of the whole chain.", stderr)
	fs.StringVar(&data, "data", "./data", "data directory of the hub (holds parcours.db)")
	fs.StringVar(&anchor, "anchor", "", "SEQ:HASH of a record noted earlier (a head or checkpoint): it must still be there")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitError(2)
	}
	var want audit.Checkpoint
	if anchor != "" {
		seq, hash, ok := strings.Cut(anchor, ":")
		n, err := strconv.ParseUint(seq, 10, 64)
		if !ok || err != nil || n == 0 || len(hash) != 64 {
			fmt.Fprintln(stderr, "parcours audit verify: --anchor is SEQ:HASH, a position and 64 hex digits")
			return exitError(2)
		}
		want = audit.Checkpoint{Seq: n, Hash: strings.ToLower(hash)}
	}
	db, err := openAuditData(data)
	if err != nil {
		return err
	}
	defer db.Close()
	var res audit.VerifyResult
	var at audit.Record
	var found bool
	var pending int
	var damaged error
	if err := db.View(func(tx *store.Tx) error {
		res = audit.Verify(tx)
		if want.Seq > 0 {
			at, found = audit.At(tx, want.Seq)
		}
		var err error
		pending, err = audit.Pending(tx, filepath.Join(data, journalFile))
		if errors.Is(err, audit.ErrJournalDamaged) {
			damaged, err = err, nil
		}
		return err
	}); err != nil {
		return err
	}
	if pending > 0 {
		fmt.Fprintf(stdout, "%d acknowledged records wait in %s (the hub stopped without closing): they join the chain when the hub next starts\n", pending, journalFile)
	}
	if damaged != nil {
		// The chain may verify; the acknowledged records waiting to join
		// it do not: the hub refuses to start on such a journal.
		fmt.Fprintf(stdout, "audit log NOT OK: %s: %v\n", journalFile, damaged)
		return exitError(1)
	}
	if !res.OK {
		fmt.Fprintf(stdout, "audit log NOT OK: %d records; first bad record %d (%s): %s\n", res.Records, res.FirstBad, res.Problem, res.Detail)
		return exitError(1)
	}
	if want.Seq > 0 && (!found || at.Hash != want.Hash) {
		fmt.Fprintf(stdout, "audit log NOT OK: %d records; record %d does not match the anchor: the chain was rewritten from there or before\n", res.Records, want.Seq)
		return exitError(1)
	}
	fmt.Fprintf(stdout, "audit log OK: %d records, chain verified; head %d %s\n", res.Records, res.Head.Seq, res.Head.Hash)
	if want.Seq > 0 {
		fmt.Fprintf(stdout, "anchor %d matches\n", want.Seq)
	}
	return nil
}

func runAuditExport(args []string, stdout, stderr io.Writer) error {
	var data, since string
	fs := newFlags("audit export --data DIR [--since RFC3339]",
		"Print the decision log as NDJSON, oldest first: one OPA decision-log event per line\n"+
			"(decision_id, timestamp, path, input, result, revision, bundles, labels, metrics…)\n"+
			"plus the chain fields seq, prev and hash. hash is the SHA-256 of the line with its\n"+
			"hash value replaced by \"\"; prev is the hash of the line before.", stderr)
	fs.StringVar(&data, "data", "./data", "data directory of the hub (holds parcours.db)")
	fs.StringVar(&since, "since", "", "only records decided at or after this time (RFC 3339)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitError(2)
	}
	var from time.Time
	if since != "" {
		t, err := time.Parse(time.RFC3339Nano, since)
		if err != nil {
			fmt.Fprintf(stderr, "parcours audit export: --since %q is not an RFC 3339 time\n", since)
			return exitError(2)
		}
		from = t
	}
	db, err := openAuditData(data)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *store.Tx) error {
		switch n, err := audit.Pending(tx, filepath.Join(data, journalFile)); {
		case err != nil:
			fmt.Fprintf(stderr, "parcours audit export: %s not read: %v\n", journalFile, err)
		case n > 0:
			fmt.Fprintf(stderr, "parcours audit export: %d acknowledged records wait in %s and are not exported: start and stop the hub to append them to the chain\n", n, journalFile)
		}
		return audit.Export(tx, stdout, from)
	})
}

// journalFile is the decision records' journal in the data directory
// (server.New opens it beside parcours.db).
const journalFile = "audit.wal"

func runAuditReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var data, id string
	fs := newFlags("audit replay --data DIR --decision ID",
		"Re-evaluate a recorded decision: its recorded policy input against the policy files of\n"+
			"its recorded revision (every revision the hub loaded is kept), and compare allow,\n"+
			"reasons, obligations and legal basis. Exit status 1 when it is not reproduced.", stderr)
	fs.StringVar(&data, "data", "./data", "data directory of the hub (holds parcours.db)")
	fs.StringVar(&id, "decision", "", "decision id (X-Decision-Id, decision_id) (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if id == "" || fs.NArg() > 0 {
		fs.Usage()
		return exitError(2)
	}
	db, err := openAuditData(data)
	if err != nil {
		return err
	}
	defer db.Close()
	var res audit.ReplayResult
	if verr := db.View(func(tx *store.Tx) error {
		res, err = audit.Replay(ctx, tx, id)
		return nil
	}); verr != nil {
		return verr
	}
	if err != nil {
		return err
	}
	verdict := "reproduced"
	if !res.Reproduced {
		verdict = "NOT reproduced (" + strings.Join(res.Differences, ", ") + " differ)"
	}
	fmt.Fprintf(stdout, "decision %s (record %d): %s\n  revision: %s\n  recorded: %s\n  replayed: %s\n", res.DecisionID, res.Seq, verdict, res.Revision, res.Recorded, res.Replayed)
	if res.Error != "" {
		fmt.Fprintf(stdout, "  replay error: %s\n", res.Error)
	}
	if !res.Reproduced {
		return exitError(1)
	}
	return nil
}

// openAuditData opens DIR/parcours.db read-only (the hub must be stopped:
// it holds the file's lock).
func openAuditData(dir string) (*store.DB, error) {
	path := filepath.Join(dir, "parcours.db")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no hub data in %s: %w", dir, err)
	}
	db, err := store.OpenReadOnly(path)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "timeout") {
			return nil, fmt.Errorf("open %s: %w (is the hub running? stop it first: offline tools need the file)", path, err)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}
