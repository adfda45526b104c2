package fhirpath

import "testing"

func TestChildType(t *testing.T) {
	for _, c := range []struct{ parent, name, want string }{
		{"Observation", "subject", "Reference"},
		{"Observation", "id", "id"},               // inherited from Resource
		{"Observation", "text", "Narrative"},      // from DomainResource
		{"Narrative", "div", "xhtml"},             //
		{"Extension", "valueUri", "uri"},          // a choice element
		{"Extension", "url", "uri"},               //
		{"Attachment", "url", "url"},              //
		{"Identifier", "value", "string"},         // not a uri: left as sent
		{"Patient", "contact", "Patient_Contact"}, // a backbone element
		{"Observation", "valueQuantity", "Quantity"},
		{"Observation", "nothing", ""},
		{"NoSuchType", "id", ""},
	} {
		if got := ChildType(c.parent, c.name); got != c.want {
			t.Errorf("ChildType(%s, %s) = %q, want %q", c.parent, c.name, got, c.want)
		}
	}
}
