package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// File names in a credentials directory: the same three as Docker's
// DOCKER_CERT_PATH, so an operator's directory and a node's data dir read
// the same way.
const (
	RootsFile = "ca.pem"
	CertFile  = "cert.pem"
	KeyFile   = "key.pem"
)

// Credentials is a node's key, certificate and trusted roots, swappable at
// run time: renewal replaces the certificate and root rotation the roots,
// and every TLS configuration made from it picks the change up at its next
// handshake, so no connection is dropped and no listener restarted.
type Credentials struct {
	cur   atomic.Pointer[bundle]
	mu    sync.Mutex // serialises Update/SetRoots and the writes to dir
	dir   string     // where updates are persisted; "" keeps them in memory
	clock func() time.Time

	subsMu sync.Mutex
	subs   []chan struct{}

	// tickets seal this server's TLS session tickets (nil: crypto/tls's
	// own keys); see tickets.go.
	tickets atomic.Pointer[ticketKeys]
}

// bundle is one consistent set: a certificate and the roots it was checked
// against.
type bundle struct {
	cert     tls.Certificate // Leaf set
	id       Identity
	roots    *x509.CertPool
	rootsPEM []byte
	certPEM  []byte
	keyPEM   []byte
}

// NewCredentials builds credentials from PEM: the certificate chain (leaf
// first), its key, and the roots to trust (one or more certificates).
func NewCredentials(certPEM, keyPEM, rootsPEM []byte) (*Credentials, error) {
	b, err := newBundle(certPEM, keyPEM, rootsPEM)
	if err != nil {
		return nil, err
	}
	c := &Credentials{clock: time.Now}
	c.cur.Store(b)
	return c, nil
}

func newBundle(certPEM, keyPEM, rootsPEM []byte) (*bundle, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate and key: %w", ErrBadCertificate, err)
	}
	id, err := IdentityFromCert(pair.Leaf)
	if err != nil {
		return nil, err
	}
	roots, err := ParseCertsPEM(rootsPEM)
	if err != nil {
		return nil, fmt.Errorf("trusted roots: %w", err)
	}
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	return &bundle{
		cert: pair, id: id, roots: pool,
		rootsPEM: bytes.Clone(rootsPEM), certPEM: bytes.Clone(certPEM), keyPEM: bytes.Clone(keyPEM),
	}, nil
}

// LoadCredentials reads ca.pem, cert.pem and key.pem from dir. Later
// updates are written back to dir. A missing file is ErrNoCredentials
// (and fs.ErrNotExist): the node has not joined yet.
func LoadCredentials(dir string) (*Credentials, error) {
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w in %s: %w", ErrNoCredentials, dir, err)
		}
		return b, err
	}
	roots, err := read(RootsFile)
	if err != nil {
		return nil, err
	}
	cert, err := read(CertFile)
	if err != nil {
		return nil, err
	}
	key, err := read(KeyFile)
	if err != nil {
		return nil, err
	}
	c, err := NewCredentials(cert, key, roots)
	if err != nil {
		return nil, fmt.Errorf("credentials in %s: %w", dir, err)
	}
	c.dir = dir
	return c, nil
}

// SaveTo writes the credentials to dir (key 0600) and makes dir the place
// later updates go.
func (c *Credentials) SaveTo(dir string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := writeBundle(dir, c.cur.Load()); err != nil {
		return err
	}
	c.dir = dir
	return nil
}

// SetClock replaces the clock used to verify peers (tests).
func (c *Credentials) SetClock(now func() time.Time) { c.clock = now }

func (c *Credentials) now() time.Time { return c.clock() }

// Identity is who the current certificate names.
func (c *Credentials) Identity() Identity { return c.cur.Load().id }

// Leaf is the current certificate.
func (c *Credentials) Leaf() *x509.Certificate { return c.cur.Load().cert.Leaf }

// Roots is the pool of trusted roots now.
func (c *Credentials) Roots() *x509.CertPool { return c.cur.Load().roots }

// RootsPEM is the trusted roots in PEM.
func (c *Credentials) RootsPEM() []byte { return bytes.Clone(c.cur.Load().rootsPEM) }

// CertPEM is the current certificate chain in PEM.
func (c *Credentials) CertPEM() []byte { return bytes.Clone(c.cur.Load().certPEM) }

// KeyPEM is the current key in PEM.
func (c *Credentials) KeyPEM() []byte { return bytes.Clone(c.cur.Load().keyPEM) }

// Update swaps in a new certificate and key (renewal) and, when rootsPEM is
// not nil, new roots (rotation). The new certificate must verify against
// the new roots and stay in the same cluster. It is persisted first when
// the credentials have a directory, so a crash leaves the old or the new
// set, never a mix that the node could not start with.
func (c *Credentials) Update(certPEM, keyPEM, rootsPEM []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.cur.Load()
	if rootsPEM == nil {
		rootsPEM = old.rootsPEM
	}
	b, err := newBundle(certPEM, keyPEM, rootsPEM)
	if err != nil {
		return err
	}
	if b.id.ClusterID != old.id.ClusterID {
		return fmt.Errorf("%w: new certificate is for cluster %s, this node is in %s", ErrWrongCA, b.id.ClusterID, old.id.ClusterID)
	}
	if _, err := verifyChain(b.cert.Certificate, b.roots, c.now(), x509.ExtKeyUsageClientAuth); err != nil {
		return fmt.Errorf("new certificate: %w", err)
	}
	if c.dir != "" {
		if err := writeBundle(c.dir, b); err != nil {
			return err
		}
	}
	c.cur.Store(b)
	c.notify()
	return nil
}

// Changed returns a channel that gets a value after each Update (buffered
// 1; a slow reader sees one value for several updates).
func (c *Credentials) Changed() <-chan struct{} {
	ch := make(chan struct{}, 1)
	c.subsMu.Lock()
	c.subs = append(c.subs, ch)
	c.subsMu.Unlock()
	return ch
}

func (c *Credentials) notify() {
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	for _, ch := range c.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// writeBundle writes the three files, each through a temporary file and a
// rename; the key is 0600 and the directory 0700.
func writeBundle(dir string, b *bundle) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("credentials dir: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{KeyFile, b.keyPEM, 0o600}, {CertFile, b.certPEM, 0o644}, {RootsFile, b.rootsPEM, 0o644}} {
		if err := writeFileAtomic(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
