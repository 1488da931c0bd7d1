package pki

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"strconv"
	"time"
)

// TLS session resumption across managers. When a leader dies, every agent
// opens a connection to the new one at the same moment, and each full
// TLS 1.3 handshake costs both sides certificate signatures and their
// verification: on a loaded machine a thousand of them took seconds of
// the new leader's CPU and of the agents'. A client that resumes a
// session skips those. The managers of a cluster seal their session
// tickets with keys each derives from the root CA key they share (it is in
// the replicated state), so a ticket one manager issued opens on another,
// and the agent's client offers the ticket of its last leader to the next
// one. A resumed connection is still checked: crypto/tls verifies the
// client's chain kept in the ticket against the roots and time of the
// moment, VerifyConnection runs as on a full handshake, and the
// authorisation of every call (revocations included) is unchanged.

// ticketEpoch is how long one ticket key seals new tickets; a ticket opens
// for up to two epochs, then a full handshake is needed.
const ticketEpoch = 12 * time.Hour

type ticketKeys struct {
	secret []byte
	epoch  int64
	keys   [][32]byte
}

func epochOf(t time.Time) int64 { return t.Unix() / int64(ticketEpoch/time.Second) }

// ticketKeysFor derives the keys of the epoch from secret: that epoch's
// first (it seals new tickets), then the one before (it still opens them).
func ticketKeysFor(secret []byte, epoch int64) (*ticketKeys, error) {
	k := &ticketKeys{secret: secret, epoch: epoch, keys: make([][32]byte, 2)}
	for i := range k.keys {
		b, err := hkdf.Key(sha256.New, secret, nil, "shoal tls session ticket key "+strconv.FormatInt(epoch-int64(i), 10), 32)
		if err != nil {
			return nil, err
		}
		copy(k.keys[i][:], b)
	}
	return k, nil
}

// SetTicketSecret makes this node's TLS servers seal and open session
// tickets with keys derived from secret (a manager passes the cluster's
// root CA key, which every manager holds), from the next handshake on.
func (c *Credentials) SetTicketSecret(secret []byte) error {
	epoch := epochOf(c.now())
	if cur := c.tickets.Load(); cur != nil && cur.epoch == epoch && bytes.Equal(cur.secret, secret) {
		return nil
	}
	k, err := ticketKeysFor(bytes.Clone(secret), epoch)
	if err != nil {
		return err
	}
	c.tickets.Store(k)
	return nil
}

// setTicketKeys gives cfg, a server configuration for one handshake, the
// session ticket keys, if a secret was set.
func (c *Credentials) setTicketKeys(cfg *tls.Config) {
	if k := c.tickets.Load(); k != nil {
		cfg.SetSessionTicketKeys(k.keys)
	}
}
