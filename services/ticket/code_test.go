package ticket

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNewCode(t *testing.T) {
	seen := map[string]bool{}
	counts := map[rune]int{}
	for range 20000 {
		c := NewCode()
		if len(c) != CodeLen {
			t.Fatalf("code %q has %d symbols", c, len(c))
		}
		for _, r := range c {
			if !strings.ContainsRune(codeAlphabet, r) {
				t.Fatalf("code %q has %q, outside the alphabet", c, r)
			}
			counts[r]++
		}
		if got, err := ParseCode(c); err != nil || got != c {
			t.Fatalf("ParseCode(%q) = %q, %v", c, got, err)
		}
		if seen[c] {
			t.Fatalf("code %q drawn twice", c)
		}
		seen[c] = true
	}
	// Every symbol is used about equally often (20000*26/32 = 16250 each); a biased
	// generator (for example a modulo of a byte by 26) would be far off.
	if len(counts) != 32 {
		t.Fatalf("%d distinct symbols used, want 32", len(counts))
	}
	for r, n := range counts {
		if n < 15000 || n > 17500 {
			t.Fatalf("symbol %q used %d times, want about 16250", r, n)
		}
	}
}

func TestAlphabet(t *testing.T) {
	if len(codeAlphabet) != 32 {
		t.Fatalf("alphabet has %d symbols", len(codeAlphabet))
	}
	for _, bad := range "ILOU" {
		if strings.ContainsRune(codeAlphabet, bad) {
			t.Fatalf("alphabet has the look-alike %q", bad)
		}
	}
	// 26 symbols of 5 bits: at least 128 bits of randomness.
	if CodeLen*5 < 128 {
		t.Fatalf("%d bits", CodeLen*5)
	}
}

func TestParseCode(t *testing.T) {
	const canon = "0123456789ABCDEFGHJKMNPQRS"
	cases := []struct {
		in   string
		want string // empty: rejected
	}{
		{canon, canon},
		{strings.ToLower(canon), canon},
		{FormatCode(canon), canon},
		{"01234-56789-ABCDE-FGHJK-MNPQR-S", canon},
		{"01234 56789 ABCDE FGHJK MNPQR S", canon},
		{" 0123456789ABCDEFGHJKMNPQRS ", canon},
		{"O1234567B9ABCDEFGHJKMNPQRS", "01234567B9ABCDEFGHJKMNPQRS"}, // O read as 0
		{"0I23456789ABCDEFGHJKMNPQRS", "0123456789ABCDEFGHJKMNPQRS"}, // I read as 1
		{"0l23456789abcdefghjkmnpqrs", "0123456789ABCDEFGHJKMNPQRS"}, // l read as 1
		{"oi23456789ABCDEFGHJKMNPQRS", "0123456789ABCDEFGHJKMNPQRS"}, // lower-case look-alikes
		{"--0123456789ABCDEFGHJKMNPQRS--", canon},                    // stray hyphens
		{"", ""},                                                            // empty
		{"-----", ""},                                                       // separators only
		{canon[:25], ""},                                                    // too short
		{canon + "T", ""},                                                   // too long
		{"U123456789ABCDEFGHJKMNPQRS", ""},                                  // U is not in the alphabet
		{"u123456789ABCDEFGHJKMNPQRS", ""},                                  // nor u
		{"0123456789ABCDEFGHJKMNPQR*", ""},                                  // punctuation
		{"0123456789ABCDEFGHJKMNPQR_", ""},                                  // underscore
		{"0123456789ABCDEFGHJKMNPQR\t", ""},                                 // tab is not a separator
		{"0123456789ABCDEFGHJKMNPQRЅ", ""},                                  // Cyrillic look-alike of S
		{"0123456789ABCDEFGHJKMNPQR\x00", ""},                               // NUL
		{"0123456789abcdefghjkmnpqr%53", ""},                                // still escaped
		{strings.Repeat("-", 1000) + canon, ""},                             // too long to read
		{strings.Repeat(" ", maxCodeInput-CodeLen) + canon, canon},          // as long as allowed
		{strings.Repeat(" ", maxCodeInput-CodeLen+1) + canon, ""},           // one byte more
		{"0123456789ABCDEFGHJKMNPQRS0123456789ABCDEFGHJKMNPQRS", ""},        // two codes
		{"00000000000000000000000000", "00000000000000000000000000"},        // valid shape
		{"ZZZZZZZZZZZZZZZZZZZZZZZZZZ", "ZZZZZZZZZZZZZZZZZZZZZZZZZZ"},        // highest symbol
		{"zzzzz-zzzzz-zzzzz-zzzzz-zzzzz-z", "ZZZZZZZZZZZZZZZZZZZZZZZZZZ"},   // formatted lower case
		{"ZZZZZ--ZZZZZ  ZZZZZ-ZZZZZ-ZZZZZ-Z", "ZZZZZZZZZZZZZZZZZZZZZZZZZZ"}, // doubled separators
	}
	for _, c := range cases {
		got, err := ParseCode(c.in)
		if c.want == "" {
			if err == nil {
				t.Errorf("ParseCode(%q) = %q, want an error", c.in, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseCode(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestFormatCode(t *testing.T) {
	if got := FormatCode("0123456789ABCDEFGHJKMNPQRS"); got != "01234-56789-ABCDE-FGHJK-MNPQR-S" {
		t.Fatalf("FormatCode = %q", got)
	}
}

// FuzzParseCode: whatever the input, ParseCode either rejects it or returns a canonical code
// that parses to itself and that the input spells, up to case, separators and look-alikes.
func FuzzParseCode(f *testing.F) {
	for _, seed := range []string{
		"0123456789ABCDEFGHJKMNPQRS", "01234-56789-abcde-fghjk-mnpqr-s", "OIL23456789ABCDEFGHJKMNPQR",
		"", "-", " ", "U", strings.Repeat("Z", 27), strings.Repeat("-", 60), "\xff\xfe", "ЅЅЅ",
		NewCode(), FormatCode(NewCode()), strings.ToLower(NewCode()),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseCode(in)
		if err != nil {
			return
		}
		if len(got) != CodeLen || !utf8.ValidString(got) {
			t.Fatalf("ParseCode(%q) = %q: not %d symbols", in, got, CodeLen)
		}
		for i := 0; i < len(got); i++ {
			if !strings.ContainsRune(codeAlphabet, rune(got[i])) {
				t.Fatalf("ParseCode(%q) = %q: %q is outside the alphabet", in, got, got[i])
			}
		}
		if again, err := ParseCode(got); err != nil || again != got {
			t.Fatalf("ParseCode(%q) = %q, but that parses to %q, %v", in, got, again, err)
		}
		if again, err := ParseCode(FormatCode(got)); err != nil || again != got {
			t.Fatalf("formatted %q parses to %q, %v", got, again, err)
		}
		// The input is the code with separators, case and look-alikes changed, nothing else.
		stripped := strings.NewReplacer("-", "", " ", "").Replace(strings.ToUpper(in))
		stripped = strings.NewReplacer("I", "1", "L", "1", "O", "0").Replace(stripped)
		if stripped != got {
			t.Fatalf("ParseCode(%q) = %q, but the input spells %q", in, got, stripped)
		}
		if len(in) > maxCodeInput {
			t.Fatalf("ParseCode accepted %d bytes", len(in))
		}
	})
}
