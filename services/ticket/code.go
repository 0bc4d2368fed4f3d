package ticket

import (
	"crypto/rand"
	"strings"

	"github.com/sbor-dev/sbor/internal/platform/errs"
)

// A ticket code is what door staff scan or type: 26 symbols of Crockford's base32, 130 bits
// from crypto/rand, so that nobody can guess a valid code (a brute-force attacker would need
// about 2^129 tries per hit). The alphabet has no I, L, O or U, so a code read aloud or
// typed from paper has no look-alike symbols; the parser forgives the usual mistakes (lower
// case, hyphens or spaces between groups, I/L for 1 and O for 0) and rejects everything else
// before the database is touched.

// CodeLen is the number of symbols in a canonical code.
const CodeLen = 26

// codeAlphabet is Crockford's base32 encoding alphabet.
const codeAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// maxCodeInput bounds what ParseCode reads: a canonical code with a separator between
// every symbol and a little slack, so a huge input costs nothing.
const maxCodeInput = 2*CodeLen + 8

// NewCode returns a fresh random code in canonical form.
func NewCode() string {
	var b [CodeLen]byte
	// crypto/rand.Read never fails (Go 1.24+: it crashes the program rather than return
	// short), so the error is not checked.
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = codeAlphabet[b[i]&31]
	}
	return string(b[:])
}

// FormatCode groups a canonical code for people: XXXXX-XXXXX-XXXXX-XXXXX-XXXXX-X.
func FormatCode(code string) string {
	var sb strings.Builder
	for i := 0; i < len(code); i++ {
		if i > 0 && i%5 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(code[i])
	}
	return sb.String()
}

var errBadCode = errs.New(errs.NotFound, "ticket_not_found", "no ticket has this code")

// ParseCode turns what a person typed or a scanner read into a canonical code, or fails
// with the same NotFound a valid but unknown code gets: a malformed code is just one that no
// ticket has, and the answer must not help anyone probe the format.
func ParseCode(s string) (string, error) {
	if len(s) > maxCodeInput {
		return "", errBadCode
	}
	var out [CodeLen]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' || c == ' ':
			continue
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		}
		switch c {
		case 'I', 'L':
			c = '1'
		case 'O':
			c = '0'
		}
		if !isCodeSymbol(c) || n == CodeLen {
			return "", errBadCode
		}
		out[n] = c
		n++
	}
	if n != CodeLen {
		return "", errBadCode
	}
	return string(out[:]), nil
}

func isCodeSymbol(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U')
}
