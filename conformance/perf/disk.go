package perf

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// fsyncRow measures the rate of fsync in dir as a bbolt commit pays it
// (server/store's BenchmarkFsync): 4 KiB written in place in a 1 MiB file,
// then File.Sync, one after the other, for d.
func fsyncRow(ctx context.Context, dir string, d time.Duration) Row {
	row := Row{Key: RowFsync, Name: "fsync of the data directory's disk (4 KiB write + fsync)", Unit: "fsync/s"}
	f, err := os.Create(filepath.Join(dir, "fsync-probe"))
	if err != nil {
		row.Skipped = err.Error()
		return row
	}
	defer os.Remove(f.Name())
	defer f.Close()
	const pages = 256
	buf := make([]byte, 4096)
	if err := f.Truncate(pages * int64(len(buf))); err == nil {
		err = f.Sync()
	}
	if err != nil {
		row.Skipped = err.Error()
		return row
	}
	var lat []time.Duration
	start := time.Now()
	for i := 0; time.Since(start) < d && ctx.Err() == nil; i++ {
		t := time.Now()
		buf[0] = byte(i)
		if _, err := f.WriteAt(buf, int64(i%pages)*int64(len(buf))); err != nil {
			row.Skipped = err.Error()
			return row
		}
		if err := f.Sync(); err != nil {
			row.Skipped = err.Error()
			return row
		}
		lat = append(lat, time.Since(t))
	}
	elapsed := time.Since(start)
	if len(lat) == 0 {
		row.Skipped = "no fsync measured"
		return row
	}
	slices.Sort(lat)
	row.Rate = float64(len(lat)) / elapsed.Seconds()
	row.P50, row.P99 = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
	row.Requests = int64(len(lat))
	row.Note = "one writer; a bbolt commit pays two (pages, then meta)"
	return row
}
