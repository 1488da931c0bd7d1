package manager

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// ReadID names the manager by its certificate, the id its Raft member has:
// a legacy manager-id file that the certificate overrides does not count,
// and a data dir without a certificate is an error, not a new id.
func TestReadID(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadID(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadID of an empty data dir: %v, want fs.ErrNotExist", err)
	}
	creds, err := bootstrapCredentials(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, idFile), []byte("stale\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	id, err := ReadID(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := creds.Identity().NodeID; id != want {
		t.Fatalf("ReadID = %q, want the certificate's CN %q", id, want)
	}
}
