package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestLogsAndBlobs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parcours.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		err := db.Update(context.Background(), func(tx *Tx) error {
			seq, err := tx.Append("audit", []byte(fmt.Sprint("r", i)))
			if err == nil && seq != uint64(i) {
				return fmt.Errorf("seq %d, want %d", seq, i)
			}
			if err == nil {
				err = tx.PutBlob("rev", fmt.Sprint("k", i%2), []byte(fmt.Sprint(i)))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.View(func(tx *Tx) error {
		if err := tx.PutBlob("x", "k", nil); err != ErrReadOnly {
			t.Errorf("PutBlob in View = %v, want ErrReadOnly", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	ro.View(func(tx *Tx) error {
		if seq, v := tx.Last("audit"); seq != 5 || string(v) != "r5" {
			t.Errorf("Last = %d %q", seq, v)
		}
		var got string
		tx.Scan("audit", 2, func(seq uint64, v []byte) bool { got += string(v); return seq < 4 })
		if got != "r2r3r4" {
			t.Errorf("Scan from 2 until 4 = %q", got)
		}
		got = ""
		tx.ScanBack("audit", 3, func(seq uint64, v []byte) bool { got += string(v); return true })
		if got != "r3r2r1" {
			t.Errorf("ScanBack from 3 = %q", got)
		}
		if v := tx.Blob("rev", "k1"); string(v) != "5" || len(tx.Blobs("rev")) != 2 {
			t.Errorf("Blob k1 = %q, blobs %v", v, tx.Blobs("rev"))
		}
		if seq, _ := tx.Last("none"); seq != 0 {
			t.Error("Last of a missing log")
		}
		return nil
	})
	if err := ro.Update(context.Background(), func(*Tx) error { return nil }); err == nil {
		t.Error("write to a read-only store succeeded")
	}
}

func TestIndexScan(t *testing.T) {
	db := openTest(t, Options{Indexer: func(typ string, res map[string]any) []IndexEntry {
		v, _ := res["v"].(string)
		return []IndexEntry{{Param: "p", Value: v}}
	}})
	for id, v := range map[string]string{"a": "2020-01", "b": "2020-02", "c": "2021-01", "d": "x\x00y"} {
		put(t, db, "Basic", id, map[string]any{"resourceType": "Basic", "v": v})
	}
	db.View(func(tx *Tx) error {
		var got []string
		tx.IndexScan("Basic", "p", "2020", func(v, id string) bool { got = append(got, v+"="+id); return true })
		if strings.Join(got, ",") != "2020-01=a,2020-02=b" {
			t.Errorf("IndexScan 2020 = %v", got)
		}
		got = nil
		tx.IndexScan("Basic", "p", "", func(v, id string) bool { got = append(got, v+"="+id); return len(got) < 3 })
		if strings.Join(got, ",") != "2020-01=a,2020-02=b,2021-01=c" {
			t.Errorf("IndexScan all (stopped at 3) = %v", got)
		}
		got = nil
		tx.IndexScan("Basic", "p", "x", func(v, id string) bool { got = append(got, v+"="+id); return true })
		if strings.Join(got, ",") != "x\x00y=d" {
			t.Errorf("IndexScan with NUL = %q", got)
		}
		return nil
	})
}
