// Package all registers every native-format mapper of Parcours
// (hospital-stays, city-activity, prevention-programme, liability-claims)
// in package mappings. The server imports it for its side effect:
//
//	import _ "github.com/parcours-sante/parcours/mappings/all"
//
// after which mappings.Lookup(source) finds each of them.
package all

import (
	_ "github.com/parcours-sante/parcours/mappings/city"       // city-activity
	_ "github.com/parcours-sante/parcours/mappings/hospital"   // hospital-stays
	_ "github.com/parcours-sante/parcours/mappings/liability"  // liability-claims
	_ "github.com/parcours-sante/parcours/mappings/prevention" // prevention-programme
)
