package pki

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// Credentials another process keeps: the agent on a manager's host is the
// same node as the manager and presents the manager's certificate, which
// the manager renews and writes to its data dir. The agent reads the files
// and never writes them, so the two never fight over them; it picks up the
// manager's renewals with Reload.

// ReadCredentials reads ca.pem, cert.pem and key.pem from dir, like
// LoadCredentials, but later updates stay in memory: dir belongs to
// another process.
func ReadCredentials(dir string) (*Credentials, error) {
	c, err := LoadCredentials(dir)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.dir = ""
	c.mu.Unlock()
	return c, nil
}

// Reload reads dir again and swaps in its certificate, key and roots when
// they differ from the current ones (changed true). The owner writes the
// three files one after another, so a read in the middle of a write may
// see a key that does not match its certificate, or roots the certificate
// does not verify against: that is an error, the current set stays, and
// the next Reload sees the complete write.
func (c *Credentials) Reload(dir string) (changed bool, err error) {
	files := map[string][]byte{}
	for _, name := range []string{KeyFile, CertFile, RootsFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return false, fmt.Errorf("reload credentials: %w", err)
		}
		files[name] = b
	}
	cur := c.cur.Load()
	if bytes.Equal(cur.certPEM, files[CertFile]) && bytes.Equal(cur.keyPEM, files[KeyFile]) &&
		bytes.Equal(cur.rootsPEM, files[RootsFile]) {
		return false, nil
	}
	if err := c.Update(files[CertFile], files[KeyFile], files[RootsFile]); err != nil {
		return false, fmt.Errorf("reload credentials from %s: %w", dir, err)
	}
	return true, nil
}
