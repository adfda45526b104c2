package server

import "testing"

// BenchmarkReadAuditedRatio is GET /fhir/Observation/{id} from 16
// goroutines on two hubs with the same data and policy, one recording its
// decisions (the default) and one not (NoAudit), run in alternating
// slices of 250 ms so that the noise of a shared machine falls on both.
// It reports each hub's reads/s, their ratio, and the process CPU time
// per read on each (user + system, and system alone; the audit log's
// goroutines included).
//
//	go test ./server/ -run '^$' -bench ReadAuditedRatio -benchtime 8x
//
// b.N is the number of slice pairs.
func BenchmarkReadAuditedRatio(b *testing.B) {
	var sides [2]*ratioSide
	for i, name := range []string{"unaudited", "audited"} {
		h := newSecureHubWith(b, func(c *Config) { c.NoAudit = name == "unaudited" })
		s := &ratioSide{name: name, handler: h.s.Handler(),
			headers: []string{"Authorization", "Bearer " + h.token("hospital-clinician"), "X-Purpose-Of-Use", "TREAT"}}
		for _, id := range seedCareTeam(b, h, 20, 5) {
			s.paths = append(s.paths, "/fhir/Observation/"+id)
		}
		sides[i] = s
	}
	readRatio(b, sides, "audited/unaudited")
}
