package gen

import (
	"fmt"
	"math/rand/v2"
)

// The invented world the patients live in: places (a département with its
// postcodes and the code it has in a NIR), establishments (FINESS) and city
// professionals (RPPS). It is the same for every seed; only the patients
// change.

// Specialty codes of the city-activity format (vocab's specialty
// CodeSystem). R1 looks for medecine-generale.
const (
	spGP        = "medecine-generale"
	spCardio    = "cardiologie"
	spGastro    = "gastro-enterologie"
	spEndo      = "endocrinologie"
	spGyneco    = "gynecologie"
	spRadiology = "radiologie"
	spLab       = "biologie-medicale"
	spPharmacy  = "pharmacie"
	spNurse     = "soins-infirmiers"
)

// Developer-mode professionals (server/auth DevUsers): the dev GP and
// pharmacist tokens carry these RPPS numbers, so the demo data shows them
// their own patients. They predate the Luhn keys of the generated ones.
const (
	devGP         = "10000000029"
	devPharmacist = "10000000037"
	devHospital   = "750712184"
)

type pro struct{ rpps, specialty string }

type place struct {
	name                                              string
	nirDept                                           string // département of birth in a NIR: 2 characters, or 3 digits overseas
	weight                                            int    // share of residents, per mille
	postcodes                                         []string
	hospitals                                         []string // FINESS of the establishments residents go to
	gps, pharmacies                                   []*pro
	lab, radiologist, cardiologist, gastro, endo, gyn *pro
	nurse                                             *pro
}

// overseas reports whether the place is a 97x département.
func (p *place) overseas() bool { return len(p.nirDept) == 3 }

type catalog struct {
	places []*place
	total  int
}

// countries of birth abroad (INSEE codes, NIR département 99).
var countries = []string{"350", "352", "351", "139", "134", "127", "341"}

func seq(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s%02d", prefix, i))
	}
	return out
}

func newCatalog() *catalog {
	c := &catalog{places: []*place{
		{name: "Paris", nirDept: "75", weight: 140, postcodes: seq("750", 1, 20), hospitals: []string{devHospital, "750100125"}},
		{name: "Seine-Saint-Denis", nirDept: "93", weight: 100, postcodes: []string{"93100", "93200", "93300", "93400", "93500", "93600"}, hospitals: []string{"930110051"}},
		{name: "Hauts-de-Seine", nirDept: "92", weight: 90, postcodes: []string{"92100", "92200", "92300", "92400", "92500", "92700"}, hospitals: []string{"920000650", "920110020"}},
		{name: "Nord", nirDept: "59", weight: 110, postcodes: []string{"59000", "59100", "59200", "59300", "59140"}, hospitals: []string{"590780193"}},
		{name: "Rhône", nirDept: "69", weight: 100, postcodes: append(seq("690", 1, 9), "69100"), hospitals: []string{"690781810"}},
		{name: "Bouches-du-Rhône", nirDept: "13", weight: 100, postcodes: append(seq("130", 1, 16), "13100"), hospitals: []string{"130786049"}},
		{name: "Gironde", nirDept: "33", weight: 90, postcodes: []string{"33000", "33100", "33200", "33300", "33400", "33700"}, hospitals: []string{"330781196"}},
		{name: "Ille-et-Vilaine", nirDept: "35", weight: 70, postcodes: []string{"35000", "35200", "35400", "35300"}, hospitals: []string{"350005179"}},
		{name: "Corse-du-Sud", nirDept: "2A", weight: 30, postcodes: []string{"20000", "20090", "20100", "20137"}, hospitals: []string{"2A0000013"}},
		{name: "Haute-Corse", nirDept: "2B", weight: 30, postcodes: []string{"20200", "20600", "20250", "20220"}, hospitals: []string{"2B0000020"}},
		{name: "Guadeloupe", nirDept: "971", weight: 40, postcodes: []string{"97100", "97110", "97139"}, hospitals: []string{"970100228"}},
		{name: "Martinique", nirDept: "972", weight: 40, postcodes: []string{"97200", "97220", "97233"}, hospitals: []string{"970211207"}},
		{name: "La Réunion", nirDept: "974", weight: 60, postcodes: []string{"97400", "97410", "97460"}, hospitals: []string{"970408589"}},
	}}
	n := 0
	next := func(sp string) *pro {
		n++
		body := fmt.Sprintf("10%08d", 1000000+n*7919)
		return &pro{rpps: body + luhnKey(body), specialty: sp}
	}
	for _, p := range c.places {
		c.total += p.weight
		for range 3 {
			p.gps = append(p.gps, next(spGP))
		}
		p.pharmacies = []*pro{next(spPharmacy), next(spPharmacy)}
		p.lab, p.radiologist = next(spLab), next(spRadiology)
		p.cardiologist, p.gastro, p.endo, p.gyn = next(spCardio), next(spGastro), next(spEndo), next(spGyneco)
		p.nurse = next(spNurse)
	}
	paris := c.places[0]
	paris.gps[0] = &pro{rpps: devGP, specialty: spGP}
	paris.pharmacies[0] = &pro{rpps: devPharmacist, specialty: spPharmacy}
	return c
}

func (c *catalog) pick(r *rand.Rand) *place {
	x := r.IntN(c.total)
	for _, p := range c.places {
		if x < p.weight {
			return p
		}
		x -= p.weight
	}
	return c.places[len(c.places)-1]
}

// luhnKey is the Luhn check digit of a string of digits (the RPPS key).
func luhnKey(body string) string {
	sum := 0
	for i := 0; i < len(body); i++ {
		d := int(body[len(body)-1-i] - '0')
		if i%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return string(rune('0' + (10-sum%10)%10))
}

// insKey is the key of a 13-character NIR: 97 − (NIR mod 97), Corsica's 2A
// and 2B counted as 19 and 18. Computed here rather than with package
// mappings so that the generator checks the mappers instead of sharing
// their code.
func insKey(nir string) string {
	var v uint64
	for i := 0; i < len(nir); i++ {
		c := nir[i]
		switch {
		case i == 5 && c == '2' && (nir[6] == 'A' || nir[6] == 'B'):
			if nir[6] == 'A' {
				v = v*100 + 19
			} else {
				v = v*100 + 18
			}
			i++
			continue
		default:
			v = v*10 + uint64(c-'0')
		}
	}
	k := 97 - v%97
	return fmt.Sprintf("%02d", k)
}
