package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

func runIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var url, token, purpose, source, mode string
	fs := newFlags("ingest --url URL --token T --source NAME [flags] FILE", "Upload a native file (CSV or NDJSON) to a hub's $ingest and print its OperationOutcome.", stderr)
	fs.StringVar(&url, "url", "", "FHIR base URL of the hub (required)")
	fs.StringVar(&token, "token", "", "bearer token of the uploader")
	fs.StringVar(&purpose, "purpose", "", "X-Purpose-Of-Use (default per source: HOPERAT, TREAT, prevention-programme-delivery, liability-claim-handling)")
	fs.StringVar(&source, "source", "", "hospital-stays | city-activity | prevention-programme | liability-claims")
	fs.StringVar(&mode, "mode", "", "partial: store the good rows of a file with bad ones")
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if url == "" || source == "" || len(files) != 1 {
		if len(files) != 1 {
			fmt.Fprintf(stderr, "parcours ingest: one FILE expected, %d given\n", len(files))
		} else {
			fmt.Fprintln(stderr, "parcours ingest: --url and --source are required")
		}
		fs.Usage()
		return exitError(2)
	}
	if purpose == "" {
		purpose = map[string]string{"hospital-stays": "HOPERAT", "city-activity": "TREAT", "prevention-programme": "prevention-programme-delivery", "liability-claims": "liability-claim-handling"}[source]
	}
	path := files[0]
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	ct := "text/csv"
	if ext := strings.ToLower(filepath.Ext(path)); ext == ".ndjson" || ext == ".jsonl" {
		ct = "application/x-ndjson"
	}
	q := "?source=" + source
	if mode != "" {
		q += "&mode=" + mode
	}
	// The upload streams the file and shows its progress on stderr.
	pr := &progress{r: f}
	stop := make(chan struct{})
	go pr.report(stop, info.Size(), path, stderr)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(url, "/")+"/$ingest"+q, pr)
	if err != nil {
		return err
	}
	req.ContentLength = info.Size()
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Accept", "application/fhir+json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("X-Purpose-Of-Use", purpose)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	close(stop)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var oo struct {
		Issue []struct {
			Severity, Code, Diagnostics string
			Expression                  []string
			Extension                   []struct {
				URL          string `json:"url"`
				ValueInteger int    `json:"valueInteger"`
			}
		} `json:"issue"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&oo); err != nil {
		return fmt.Errorf("status %d: the answer is not an OperationOutcome: %w", resp.StatusCode, err)
	}
	fmt.Fprintf(stdout, "%s: HTTP %d in %v\n", path, resp.StatusCode, time.Since(start).Round(time.Millisecond))
	for _, is := range oo.Issue {
		where := ""
		for _, e := range is.Extension {
			if strings.HasSuffix(e.URL, "-line") {
				where += fmt.Sprintf("line %d ", e.ValueInteger)
			} else if strings.HasSuffix(e.URL, "-col") {
				where += fmt.Sprintf("column %d ", e.ValueInteger)
			}
		}
		if len(is.Expression) > 0 {
			where += "(" + strings.Join(is.Expression, ", ") + ") "
		}
		fmt.Fprintf(stdout, "  %-11s %s%s\n", is.Severity, where, is.Diagnostics)
	}
	if resp.StatusCode != http.StatusOK {
		return exitError(1)
	}
	return nil
}

// progress counts the bytes read from a file being uploaded.
type progress struct {
	r    io.Reader
	sent atomic.Int64
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.sent.Add(int64(n))
	return n, err
}

func (p *progress) report(stop <-chan struct{}, size int64, name string, w io.Writer) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var sentAt time.Time // when the whole file was sent
	printed := false
	for {
		select {
		case <-stop:
			if printed {
				fmt.Fprintln(w)
			}
			return
		case now := <-t.C:
			sent := p.sent.Load()
			if sent >= size && sentAt.IsZero() {
				sentAt = now
			}
			fmt.Fprintf(w, "\r%s", progressLine(name, sent, size, now.Sub(sentAt), !sentAt.IsZero()))
			printed = true
		}
	}
}

// progressLine is the progress of an upload: the share sent, then, once
// the hub has the whole file (it spools it before it checks and stores
// it, and answers only then), how long it has been working on it.
func progressLine(name string, sent, size int64, working time.Duration, done bool) string {
	if done || size <= 0 {
		return fmt.Sprintf("%s: sent (%s); the hub is checking and storing it: %v   ", name, byteSize(sent), working.Round(time.Second))
	}
	return fmt.Sprintf("%s: %d%% sent (%s of %s)   ", name, sent*100/size, byteSize(sent), byteSize(size))
}

// byteSize renders n bytes for people.
func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
