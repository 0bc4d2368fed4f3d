package user

import (
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/identity"
)

// User is an account.
type User struct {
	ID           uuid.UUID
	Email        string
	Name         string
	Role         identity.Role
	PasswordHash string
	CreatedAt    time.Time
}

// NewUser is a registration request.
type NewUser struct {
	Email    string
	Name     string
	Password string
}

// Password policy: length is what makes a password strong (NIST SP 800-63B); the upper bound
// keeps hashing cost bounded. A password must also not be trivially guessable.
const (
	MinPasswordLen = 10
	MaxPasswordLen = 128
	MaxNameLen     = 100
	MaxEmailLen    = 254
)

// NormalizeEmail trims and lower-cases an email so that one mailbox is one account.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// validEmail accepts a bare address (no display name) with a dotted domain.
func validEmail(email string) bool {
	if email == "" || len(email) > MaxEmailLen {
		return false
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" {
		return false
	}
	at := strings.LastIndexByte(email, '@')
	return at > 0 && strings.Contains(email[at+1:], ".") && !strings.HasSuffix(email, ".")
}

// weakPasswords are refused whatever their length.
var weakPasswords = map[string]bool{
	"password123": true, "password1234": true, "qwertyuiop": true, "1234567890": true,
	"0123456789": true, "abcdefghij": true, "iloveyou123": true, "letmein123": true,
}

func checkPassword(v *errs.Validation, password, email string) {
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLen:
		v.Add("password", "must be at least 10 characters")
		return
	case len(password) > MaxPasswordLen:
		v.Add("password", "must be at most 128 bytes")
		return
	}
	distinct := map[rune]bool{}
	hasLetter, hasOther := false, false
	for _, r := range password {
		distinct[r] = true
		if unicode.IsLetter(r) {
			hasLetter = true
		} else {
			hasOther = true
		}
	}
	lower := strings.ToLower(password)
	local, _, _ := strings.Cut(email, "@")
	switch {
	case len(distinct) < 5:
		v.Add("password", "is too repetitive: use at least 5 different characters")
	case !hasLetter || !hasOther:
		v.Add("password", "must mix letters with digits or symbols")
	case weakPasswords[lower]:
		v.Add("password", "is a commonly used password")
	case local != "" && len(local) >= 4 && strings.Contains(lower, local):
		v.Add("password", "must not contain the email address")
	}
}

// Validate checks a registration and returns it normalised.
func (nu NewUser) Validate() (NewUser, error) {
	nu.Email = NormalizeEmail(nu.Email)
	nu.Name = strings.TrimSpace(nu.Name)
	var v errs.Validation
	v.Check(validEmail(nu.Email), "email", "must be a valid email address")
	v.Check(nu.Name != "", "name", "must not be empty")
	v.Check(utf8.RuneCountInString(nu.Name) <= MaxNameLen, "name", "must be at most 100 characters")
	v.Check(utf8.ValidString(nu.Name) && !strings.ContainsFunc(nu.Name, unicode.IsControl), "name", "must not contain control characters")
	checkPassword(&v, nu.Password, nu.Email)
	return nu, v.Err()
}

// TokenPair is what login, refresh and become-organizer return.
type TokenPair struct {
	AccessToken  string
	RefreshToken string
	ExpiresIn    time.Duration
}
