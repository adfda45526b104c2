package vocab_test

import (
	"fmt"

	"github.com/parcours-sante/parcours/mappings/vocab"
)

// The same colonoscopy at three stages, depending on the context.
func ExampleStage() {
	for _, ctx := range []vocab.Context{
		{Setting: vocab.SettingPrevention},
		{RecentResults: []vocab.Coding{{System: vocab.SystemLOINC, Code: "29771-3"}}},
		{PriorConditions: []vocab.Coding{{System: vocab.SystemCIM10, Code: "Z85.0"}}},
	} {
		st, _ := vocab.Stage(vocab.SystemCCAM, "HHQE002", ctx)
		fmt.Println(st.Code, st.Top, st.Order)
	}
	// Output:
	// depistage prevention 1
	// diagnostic diagnostic 2
	// suivi suivi 4
}

func ExampleTranslate() {
	p := vocab.Translate(vocab.TranslateParams{System: vocab.SystemNABM, Code: "1577"})
	for _, x := range p["parameter"].([]any) {
		fmt.Println(x.(map[string]any)["name"])
	}
	// Output:
	// result
	// match
}
