package load_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/parcours-sante/parcours/conformance/load"
)

// Run drives a FHIR server and prints a table of throughput and latency.
func ExampleRun() {
	rep, err := load.Run(context.Background(), load.Config{
		URL:      "http://127.0.0.1:8080/fhir",
		Conns:    16,
		Duration: 10 * time.Second,
		Scenario: load.ScenarioMixed,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(rep)
	fmt.Printf("%.0f req/s, p99 %v, %d errors\n", rep.RPS, rep.P99, rep.Errors)
}
