package search

import "testing"

// TestPhonetic: American Soundex (the classic examples), accents removed
// first, "" without letters.
func TestPhonetic(t *testing.T) {
	for in, want := range map[string]string{
		"Robert": "r163", "Rupert": "r163", "Rubin": "r150", "Ashcraft": "a261", "Ashcroft": "a261",
		"Tymczak": "t522", "Pfister": "p236", "Honeyman": "h555", "Reinger": "r526", "Rainger": "r526",
		"Kriger": "k626", "Lee": "l000", "lefevre": "l116", "Lefebvre": "l116", "12": "",
	} {
		if got := Phonetic(Normalize(in)); got != want {
			t.Errorf("Phonetic(%q) = %q, want %q", in, got, want)
		}
	}
	if got := phoneticCodes("Van der Berg"); len(got) != 4 || got[3] != Phonetic("van der berg") {
		t.Errorf("phoneticCodes: %v, want one per word and the whole name's", got)
	}
}
