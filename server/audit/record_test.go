package audit

import (
	"net/url"
	"testing"
)

func TestURLLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/fhir/Patient/123", "/fhir/Patient/:id"},
		{"/fhir/Patient/123/$everything?_count=5", "/fhir/Patient/:id/$everything?_count"},
		{"/fhir/Patient/123/_history/2", "/fhir/Patient/:id/_history/:id"},
		{"/fhir/Patient/0192-ab/Observation", "/fhir/Patient/:id/Observation"},
		{"/fhir/Patient/_history", "/fhir/Patient/_history"},
		{"/fhir/Patient/_search", "/fhir/Patient/_search"},
		{"/fhir/Patient", "/fhir/Patient"},
		{"/fhir/Observation/77", "/fhir/Observation/:id"},
		// Any id, wherever the caller put it (once a patient's id asked as
		// an Observation's, or under a lower-case type, reached the log).
		{"/fhir/patient/0192-ab", "/fhir/:id/:id"},
		{"/fhir/Foo/0192-ab", "/fhir/:id/:id"},
		{"/fhir/AuditEvent/0192-ab/$review", "/fhir/AuditEvent/:id/$review"},
		{"/fhir/Observation?patient=Patient/1&code=http://loinc.org|4548-4&patient=2", "/fhir/Observation?code&patient"},
		{"/fhir/Condition?_text=diab%C3%A8te&_count=10", "/fhir/Condition?_count&_text"},
		{"/fhir/Observation?", "/fhir/Observation"},
		{"/fhir/x?a%20b=1&=2", "/fhir/:id?a+b"},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		isType := func(s string) bool {
			return s == "Patient" || s == "Observation" || s == "Condition" || s == "AuditEvent"
		}
		if got := URLLabel(u, isType); got != tt.want {
			t.Errorf("URLLabel(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
