package pki

import (
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"math/big"
	"strings"
)

// Join tokens: SHLTKN-1-<root CA digest>-<secret>. The digest lets a
// joining node check the CA it is shown before it sends the secret; the
// secret says which role the node gets.
const (
	tokenPrefix  = "SHLTKN"
	tokenVersion = "1"
	secretLen    = 25 // base-36 digits of 128 random bits
	digestLen    = 50 // base-36 digits of a SHA-256
)

// Token is a parsed join token.
type Token struct {
	Digest string // of the root CA certificate
	Secret string
}

// String is the token as a user types it.
func (t Token) String() string {
	return fmt.Sprintf("%s-%s-%s-%s", tokenPrefix, tokenVersion, t.Digest, t.Secret)
}

// NewToken makes a token for the root with digest, with a new secret.
func NewToken(digest string) (Token, error) {
	s, err := randomBase36(secretLen)
	if err != nil {
		return Token{}, err
	}
	return Token{Digest: digest, Secret: s}, nil
}

// ParseToken reads a join token, naming the part that is wrong.
func ParseToken(s string) (Token, error) {
	parts := strings.Split(strings.TrimSpace(s), "-")
	if len(parts) != 4 || parts[0] != tokenPrefix {
		return Token{}, fmt.Errorf("%w: want %s-%s-<digest>-<secret> (from shoalctl cluster join-token)", ErrInvalidToken, tokenPrefix, tokenVersion)
	}
	if parts[1] != tokenVersion {
		return Token{}, fmt.Errorf("%w: version %q, this build reads version %s", ErrInvalidToken, parts[1], tokenVersion)
	}
	if len(parts[2]) != digestLen || !isBase36(parts[2]) {
		return Token{}, fmt.Errorf("%w: the CA digest part is not %d base-36 digits", ErrInvalidToken, digestLen)
	}
	if len(parts[3]) != secretLen || !isBase36(parts[3]) {
		return Token{}, fmt.Errorf("%w: the secret part is not %d base-36 digits", ErrInvalidToken, secretLen)
	}
	return Token{Digest: parts[2], Secret: parts[3]}, nil
}

// SecretEqual compares two secrets in constant time.
func SecretEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func isBase36(s string) bool {
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z') {
			return false
		}
	}
	return true
}

func randomBase36(n int) (string, error) {
	max := new(big.Int).Exp(big.NewInt(36), big.NewInt(int64(n)), nil)
	v, err := rand.Int(rand.Reader, max)
	if err != nil {
		return "", fmt.Errorf("random token secret: %w", err)
	}
	return fmt.Sprintf("%0*s", n, v.Text(36)), nil
}
