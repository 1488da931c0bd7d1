package pki_test

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/pki"
)

func TestRenewAt(t *testing.T) {
	issued := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, life := range []time.Duration{time.Hour, 90 * 24 * time.Hour} {
		leaf := &x509.Certificate{NotBefore: issued.Add(-pki.Backdate), NotAfter: issued.Add(life)}
		for _, tc := range []struct {
			frac float64
			want time.Duration
		}{{0, life / 2}, {0.5, life * 65 / 100}, {1, life * 8 / 10}} {
			got := pki.RenewAt(leaf, tc.frac).Sub(issued)
			if d := got - tc.want; d > time.Second || d < -time.Second {
				t.Errorf("life %s, frac %v: renew %s after issue, want %s", life, tc.frac, got, tc.want)
			}
		}
	}
}
