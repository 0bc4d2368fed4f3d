package web

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// validRequestID is the rule it states, checked against that rule as a regular expression
// on the edge cases and on random strings, now and then with a character it refuses.
func TestValidRequestIDIsItsRule(t *testing.T) {
	rule := regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	cases := []string{"", "a", "A-b_c.d:9", strings.Repeat("x", 128), strings.Repeat("x", 129),
		"a b", "a/b", "ä", "a\n", "a\x00", "é", "0123456789abcdef0123456789abcdef"}
	valid, invalid := []rune("aZ09._:-"), []rune("/ \t\n\x00é+%=")
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 { // about half of them valid
		var b strings.Builder
		for range r.IntN(140) {
			if r.IntN(200) == 0 {
				b.WriteRune(invalid[r.IntN(len(invalid))])
			} else {
				b.WriteRune(valid[r.IntN(len(valid))])
			}
		}
		cases = append(cases, b.String())
	}
	for _, id := range cases {
		if got, want := validRequestID(id), rule.MatchString(id); got != want {
			t.Errorf("validRequestID(%q) = %v, want %v", id, got, want)
		}
	}
}
