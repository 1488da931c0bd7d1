package pki_test

import (
	"testing"

	"github.com/shoal-sched/shoal/pki"
)

// FuzzParseToken: a token comes from a command line or a network peer;
// parsing it never panics, and what it accepts prints back as itself.
func FuzzParseToken(f *testing.F) {
	f.Add("SHLTKN-1-" + "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcd" + "-0123456789abcdefghijklmno")
	f.Add("SHLTKN-1--")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := pki.ParseToken(s)
		if err != nil {
			return
		}
		back, err := pki.ParseToken(tok.String())
		if err != nil || back != tok {
			t.Fatalf("%q parsed to %v, which reads back as %v (%v)", s, tok, back, err)
		}
	})
}
