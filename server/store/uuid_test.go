package store

import "testing"

// TestUUIDRoundTrip: ParseUUID reads back what FormatUUID and NewID write,
// and refuses what it could not give back unchanged.
func TestUUIDRoundTrip(t *testing.T) {
	for range 100 {
		id := NewID()
		u, ok := ParseUUID(id)
		if !ok || FormatUUID(u) != id {
			t.Fatalf("%s: parsed %v, formatted back %s", id, ok, FormatUUID(u))
		}
	}
	for _, bad := range []string{"", "0190c3e2-7b1a-7c3d-8e4f-0a1b2c3d4e5", "0190C3E2-7B1A-7C3D-8E4F-0A1B2C3D4E5F", "0190c3e2x7b1a-7c3d-8e4f-0a1b2c3d4e5f", "0190c3e2-7b1a-7c3d-8e4f-0a1b2c3d4e5g"} {
		if _, ok := ParseUUID(bad); ok {
			t.Errorf("ParseUUID(%q) accepted", bad)
		}
	}
}
