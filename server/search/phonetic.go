package search

import "strings"

// Phonetic is the code the phonetic search parameters (Patient, Person,
// Practitioner, RelatedPerson: "a portion of either family or given name
// using some kind of phonetic matching algorithm") index and compare:
// American Soundex of the letters of s, accents removed — its first
// letter and three digits, lower case ("r526" for Reinger and Rainger).
// "" when s has no letter. The R4 specification names no algorithm;
// Soundex is the one most servers use, English-born but fair on French
// surnames once the accents are gone.
func Phonetic(s string) string {
	var out [4]byte
	n := 0
	var last byte // the code of the previous letter ('0' a vowel)
	for i := 0; i < len(s) && n < 4; i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c < 'a' || c > 'z' {
			continue
		}
		code := soundexCode[c-'a']
		switch {
		case n == 0:
			out[0] = c
			n = 1
		case code == 0: // h and w do not separate equal codes
			continue
		case code != '0' && code != last:
			out[n] = code
			n++
		}
		last = code
	}
	if n == 0 {
		return ""
	}
	for ; n < 4; n++ {
		out[n] = '0'
	}
	return string(out[:])
}

// soundexCode maps a..z to Soundex digits; '0' for vowels (and y), 0 for
// h and w.
var soundexCode = [26]byte{
	'0', '1', '2', '3', '0', '1', '2', 0, '0', '2', '2', '4', '5', // a–m
	'5', '0', '1', '2', '6', '2', '3', '0', '1', 0, '2', '0', '2', // n–z
}

// phoneticCodes are the codes indexed for a name value: one per word and
// one for the whole (a family name of two words).
func phoneticCodes(s string) []string {
	s = Normalize(s)
	words := strings.Fields(s)
	out := make([]string, 0, len(words)+1)
	for _, w := range append(words, s) {
		if c := Phonetic(w); c != "" {
			out = append(out, c)
		}
	}
	return out
}
