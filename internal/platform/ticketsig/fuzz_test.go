package ticketsig_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/ticketsig"
)

var b64 = base64.RawURLEncoding.Strict()

// FuzzParse feeds Parse anything: it must never panic, and whatever it accepts must be in
// canonical form (re-encoding the parts gives back the input) and must not verify under an
// unrelated key.
func FuzzParse(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	s := ticketsig.NewSigner(priv)
	good := s.Sign(uuid.MustParse("0190f3a2-7b1c-7d2e-8f40-1a2b3c4d5e6f"), uuid.MustParse("6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"))
	for _, seed := range []string{
		good, "", "S1.", "S1...", good + "=", good[:len(good)-1], strings.ToLower(good),
		strings.Replace(good, "S1.", "S1\n", 1), good[:20] + "\r\n" + good[22:],
		strings.Repeat(".", ticketsig.CodeLen), "S1." + strings.Repeat("A", ticketsig.CodeLen-3),
		"0123456789ABCDEFGHJKMNPQRS",
	} {
		f.Add(seed)
	}
	other, _, _ := ed25519.GenerateKey(nil)
	f.Fuzz(func(t *testing.T, in string) {
		c, err := ticketsig.Parse(in)
		if err != nil {
			return
		}
		payload := append(c.TicketID[:], c.EventID[:]...)
		again := "S1." + c.KID + "." + b64.EncodeToString(payload) + "." + b64.EncodeToString(c.Signature[:])
		if again != in {
			t.Fatalf("accepted a non-canonical code %q (canonical %q)", in, again)
		}
		if ticketsig.Verify(other, c) {
			t.Fatalf("%q verifies under an unrelated key", in)
		}
		_ = ticketsig.Verify(s.Public(), c)
	})
}

func BenchmarkSign(b *testing.B) {
	s := ticketsig.NewSigner(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	tid, eid := uuid.New(), uuid.New()
	for b.Loop() {
		_ = s.Sign(tid, eid)
	}
}

func BenchmarkParseVerify(b *testing.B) {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	code := ticketsig.Sign(priv, uuid.New(), uuid.New())
	for b.Loop() {
		c, err := ticketsig.Parse(code)
		if err != nil || !ticketsig.Verify(pub, c) {
			b.Fatal("bad")
		}
	}
}
