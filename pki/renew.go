package pki

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Renewal window: a node renews at a random point between these fractions
// of its certificate's life, so that a cluster whose nodes joined together
// does not renew all at once, and a node has the rest of the life to
// retry.
const (
	RenewFrom = 0.5
	RenewTo   = 0.8
)

// Clock is the time source of renewal (tests step a fake one).
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// RealClock is the wall clock.
var RealClock Clock = realClock{}

// Issuer is where a node renews: a manager over the NodeCA API, or a
// manager's own CA.
type Issuer interface {
	// Status says whether to renew now and which roots to trust.
	Status(ctx context.Context) (renew bool, roots []byte, err error)
	// Renew signs a certificate over csr for the caller's node ID and
	// role; it returns the certificate chain and the roots to trust.
	Renew(ctx context.Context, csr []byte) (cert, roots []byte, err error)
}

// Renewer keeps Credentials fresh: it renews at a random point in
// [RenewFrom, RenewTo] of the certificate's life, at once when the CA
// says so (a root rotation), and takes new roots when the CA lists them.
// The credentials are swapped in place, so connections stay up.
type Renewer struct {
	Creds  *Credentials
	Issuer Issuer
	Clock  Clock // default RealClock
	// StatusInterval is how often the CA is asked whether to renew early
	// (default 1 minute).
	StatusInterval time.Duration
	// RetryInterval is the pause after a failed renewal (default 10 s).
	RetryInterval time.Duration
	// Rand returns a number in [0, 1) (default math/rand).
	Rand   func() float64
	Logger *slog.Logger
}

// RenewAt is when a certificate should be renewed: at frac of the way
// through [RenewFrom, RenewTo] of its life, counted from its issue (its
// NotBefore is backdated by Backdate).
func RenewAt(leaf *x509.Certificate, frac float64) time.Time {
	issued := leaf.NotBefore.Add(Backdate)
	if issued.After(leaf.NotAfter) {
		issued = leaf.NotBefore
	}
	life := leaf.NotAfter.Sub(issued)
	f := RenewFrom + frac*(RenewTo-RenewFrom)
	return issued.Add(time.Duration(float64(life) * f))
}

// Run renews until ctx ends.
func (r *Renewer) Run(ctx context.Context) error {
	clock := r.Clock
	if clock == nil {
		clock = RealClock
	}
	rnd := r.Rand
	if rnd == nil {
		rnd = rand.Float64
	}
	statusEvery := cmpDur(r.StatusInterval, time.Minute)
	retry := cmpDur(r.RetryInterval, 10*time.Second)
	log := r.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "renewer", "node_id", r.Creds.Identity().NodeID)
	at := RenewAt(r.Creds.Leaf(), rnd())
	log.Info("certificate renewal scheduled", "not_after", r.Creds.Leaf().NotAfter, "renew_at", at)
	for {
		wait := min(at.Sub(clock.Now()), statusEvery)
		if wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-clock.After(wait):
			}
		}
		now := clock.Now()
		renew := !now.Before(at)
		if !renew {
			early, err := r.checkStatus(ctx)
			if err != nil {
				log.Warn("certificate status check failed", "err", err)
				continue
			}
			renew = early
		}
		if !renew {
			continue
		}
		if err := r.RenewNow(ctx); err != nil {
			log.Warn("certificate renewal failed; retrying", "err", err, "not_after", r.Creds.Leaf().NotAfter)
			at = clock.Now().Add(retry)
			continue
		}
		at = RenewAt(r.Creds.Leaf(), rnd())
		log.Info("certificate renewed", "not_after", r.Creds.Leaf().NotAfter, "renew_at", at)
	}
}

// checkStatus takes new roots from the CA and says whether to renew now.
func (r *Renewer) checkStatus(ctx context.Context) (bool, error) {
	renew, roots, err := r.Issuer.Status(ctx)
	if err != nil {
		return false, err
	}
	if len(roots) > 0 && !bytes.Equal(roots, r.Creds.RootsPEM()) {
		if err := r.Creds.Update(r.Creds.CertPEM(), r.Creds.KeyPEM(), roots); err != nil {
			return false, fmt.Errorf("take the CA's new roots: %w", err)
		}
	}
	return renew, nil
}

// RenewNow gets a new certificate over a new key and swaps it in.
func (r *Renewer) RenewNow(ctx context.Context) error {
	keyPEM, csr, err := NewKeyAndCSR()
	if err != nil {
		return err
	}
	cert, roots, err := r.Issuer.Renew(ctx, csr)
	if err != nil {
		return err
	}
	if len(roots) == 0 {
		roots = r.Creds.RootsPEM()
	}
	return r.Creds.Update(cert, keyPEM, roots)
}

func cmpDur(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
