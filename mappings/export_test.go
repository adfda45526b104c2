package mappings

// UUID5 exposes uuid5 to the tests.
var UUID5 = uuid5
