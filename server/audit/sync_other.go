//go:build !linux

package audit

import "os"

func fdatasync(f *os.File, _ int) error { return f.Sync() }
