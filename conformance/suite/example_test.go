package suite_test

import (
	"context"
	"fmt"
	"log"

	"github.com/parcours-sante/parcours/conformance"
	"github.com/parcours-sante/parcours/conformance/suite"
)

// Run tests a FHIR R4 server and prints a pass/fail table; every resource
// the server returns is checked against the R4 JSON schema.
func ExampleRun() {
	v, err := conformance.NewValidator()
	if err != nil {
		log.Fatal(err)
	}
	rep, err := suite.Run(context.Background(), suite.Config{
		URL:      "http://127.0.0.1:8080/fhir",
		Validate: v.Validate,
	})
	if err != nil {
		log.Fatal(err) // the server is unreachable
	}
	fmt.Print(rep.Table())
	if rep.Failed > 0 {
		log.Fatalf("%d checks failed", rep.Failed)
	}
}
