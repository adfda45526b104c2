package mappings

// UUID5 exposes uuid5 to the tests.
var UUID5 = uuid5

// SetMaxIssues sets MaxIssues for a test and returns what restores it.
func SetMaxIssues(n int) (restore func()) {
	old := MaxIssues
	MaxIssues = n
	return func() { MaxIssues = old }
}
