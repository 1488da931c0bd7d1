package ca_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/internal/poll"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/pki/join"
)

// echoServer accepts TLS connections with the manager's credentials and
// echoes each line back, prefixed with the serial of the client's
// certificate, until the connection closes.
func echoServer(t *testing.T, creds *pki.Credentials) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", creds.ServerTLS())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				if tc.Handshake() != nil {
					return
				}
				serial := tc.ConnectionState().PeerCertificates[0].SerialNumber.String()
				buf := make([]byte, 1)
				for {
					if _, err := io.ReadFull(tc, buf); err != nil {
						return
					}
					if _, err := fmt.Fprintf(tc, "%s\n", serial); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// ask sends one byte on c and reads the serial the server saw.
func ask(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("?")); err != nil {
		t.Fatalf("the connection made before the renewal is gone: %v", err)
	}
	var serial string
	if _, err := fmt.Fscanln(c, &serial); err != nil {
		t.Fatalf("the connection made before the renewal is gone: %v", err)
	}
	return serial
}

// TestRenewalWindow: with 1-hour certificates a node renews between 30 and
// 48 minutes after its certificate was issued (the clock is stepped a
// minute at a time), and the credentials are swapped in place: a
// connection made before the renewal goes on, a new one presents the new
// certificate.
func TestRenewalWindow(t *testing.T) {
	for _, tc := range []struct {
		name string
		rand func() float64
		from time.Duration // the renewal is seen in [from, to] (the clock steps a minute)
		to   time.Duration
	}{
		{"earliest", func() float64 { return 0 }, 30 * time.Minute, 32 * time.Minute},
		{"latest", func() float64 { return 0.9999 }, 47 * time.Minute, 49 * time.Minute},
		{"random", nil, 30 * time.Minute, 49 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) { renewalWindow(t, tc.rand, tc.from, tc.to) })
	}
}

func renewalWindow(t *testing.T, rnd func() float64, from, to time.Duration) {
	clock := newFakeClock(time.Now())
	h := newCAHarness(t, clock.Now, api.ClusterSettings{CertExpiry: api.Duration(time.Hour)})
	worker, _ := h.tokens()
	o := joinOpts(h, worker, pki.RoleWorker)
	o.Now = clock.Now
	creds, err := join.Obtain(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	creds.SetClock(clock.Now)
	// Certificates carry whole seconds.
	issued := creds.Leaf().NotBefore.Add(pki.Backdate)
	if life := creds.Leaf().NotAfter.Sub(issued); life != time.Hour {
		t.Fatalf("certificate life %s, want the cluster's 1h", life)
	}
	before := creds.Leaf().SerialNumber.String()
	echo := echoServer(t, h.mgr)
	old, err := tls.Dial("tcp", echo, creds.ClientTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if got := ask(t, old); got != before {
		t.Fatalf("server saw serial %s, want %s", got, before)
	}

	r := &pki.Renewer{
		Creds: creds, Issuer: &join.Remote{Creds: creds, Managers: func() []string { return []string{h.addr} }},
		Clock: clock, Rand: rnd, StatusInterval: 5 * time.Minute,
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	var seen time.Duration
	for step := 0; step <= 70 && seen == 0; step++ {
		// Step only once the renewer waits on the clock again.
		poll.Until(t, 10*time.Second, func() error {
			if clock.Waiting() != 1 {
				return fmt.Errorf("the renewer is not waiting on the clock (%d timers)", clock.Waiting())
			}
			return nil
		})
		if h.renews.Load() > 0 {
			seen = clock.Now().Sub(issued)
			break
		}
		clock.Advance(time.Minute)
	}
	if seen < from || seen > to {
		t.Fatalf("renewed %s after issue, want within [%s, %s]", seen, from, to)
	}
	after := creds.Leaf().SerialNumber.String()
	if life := creds.Leaf().NotAfter.Sub(clock.Now()); after == before || life > time.Hour || life < time.Hour-time.Second {
		t.Fatalf("after renewal: serial %s (was %s), valid until %s", after, before, creds.Leaf().NotAfter)
	}
	if got := ask(t, old); got != before {
		t.Fatalf("old connection now says %s", got)
	}
	fresh, err := tls.Dial("tcp", echo, creds.ClientTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if got := ask(t, fresh); got != after {
		t.Fatalf("a new connection presents serial %s, want the renewed %s", got, after)
	}
}
