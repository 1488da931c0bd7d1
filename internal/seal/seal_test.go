package seal

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestBlobRoundTripAndPlaintextPassThrough(t *testing.T) {
	box, err := NewBox(NewKey())
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("env MARKER=secret")
	sealed := box.Seal(msg)
	if bytes.Contains(sealed, msg) || !IsSealed(sealed) {
		t.Fatal("the sealed blob shows the plaintext")
	}
	if got, err := box.Open(sealed); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if got, err := box.Open([]byte{0x08, 0x01}); err != nil || !bytes.Equal(got, []byte{0x08, 0x01}) {
		t.Fatalf("an unsealed blob: %q, %v; want it as it is", got, err)
	}
	other, _ := NewBox(NewKey())
	if _, err := other.Open(sealed); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open under another key = %v, want ErrCorrupt", err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := box.Open(sealed); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a damaged blob = %v, want ErrCorrupt", err)
	}
}

func TestStreamRoundTripSizesAndDamage(t *testing.T) {
	box, _ := NewBox(NewKey())
	for _, n := range []int{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 3*chunkSize + 17} {
		plain := bytes.Repeat([]byte("MARKER"), n/6+1)[:n]
		var buf bytes.Buffer
		w, err := box.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(plain); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if n >= 6 && bytes.Contains(buf.Bytes(), []byte("MARKER")) {
			t.Fatalf("%d bytes: the sealed stream shows the plaintext", n)
		}
		if got := PlainSize(int64(buf.Len())); got != int64(n) {
			t.Fatalf("PlainSize(%d) = %d, want %d", buf.Len(), got, n)
		}
		r, sealed, err := box.NewReader(bytes.NewReader(buf.Bytes()))
		if err != nil || !sealed {
			t.Fatalf("NewReader: sealed %v, %v", sealed, err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%d bytes: read back %d bytes, %v", n, len(got), err)
		}
		// A stream cut short fails instead of reading as a shorter one.
		r, _, _ = box.NewReader(bytes.NewReader(buf.Bytes()[:buf.Len()-1]))
		if _, err := io.ReadAll(r); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%d bytes cut short: %v, want ErrCorrupt", n, err)
		}
	}
	r, sealed, err := box.NewReader(bytes.NewReader([]byte("plain snapshot")))
	if err != nil || sealed {
		t.Fatalf("an unsealed stream: sealed %v, %v", sealed, err)
	}
	if got, _ := io.ReadAll(r); string(got) != "plain snapshot" {
		t.Fatalf("an unsealed stream reads %q", got)
	}
}

func TestKeyFilePlainAndWrapped(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadKey(dir, nil); !errors.Is(err, ErrNoKeyFile) {
		t.Fatalf("LoadKey of an empty dir = %v, want ErrNoKeyFile", err)
	}
	key, unlock := NewKey(), NewKey()
	if err := StoreKey(dir, key, nil); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", fi.Mode(), err)
	}
	if st, err := LoadKey(dir, nil); err != nil || st.Locked || !bytes.Equal(st.Key, key) {
		t.Fatalf("plain key: %+v, %v", st, err)
	}
	if err := StoreKey(dir, key, unlock); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, KeyFileName))
	if bytes.Contains(raw, key) {
		t.Fatal("the wrapped key file holds the data key")
	}
	if st, err := LoadKey(dir, nil); err != nil || !st.Locked || st.Key != nil {
		t.Fatalf("wrapped key without unlock: %+v, %v; want locked", st, err)
	}
	if _, err := LoadKey(dir, NewKey()); !errors.Is(err, ErrWrongUnlockKey) {
		t.Fatalf("wrong unlock key: %v", err)
	}
	if st, err := LoadKey(dir, unlock); err != nil || !bytes.Equal(st.Key, key) {
		t.Fatalf("unlock: %+v, %v", st, err)
	}
	text := FormatUnlockKey(unlock)
	if back, err := ParseUnlockKey(" " + text + "\n"); err != nil || !bytes.Equal(back, unlock) {
		t.Fatalf("ParseUnlockKey: %v", err)
	}
	for _, bad := range []string{"", "SHLKEY-1-", "SHLKEY-1-abc", "SHLTKN-1-" + text[9:]} {
		if _, err := ParseUnlockKey(bad); !errors.Is(err, ErrBadUnlockKey) {
			t.Errorf("ParseUnlockKey(%q) = %v, want ErrBadUnlockKey", bad, err)
		}
	}
}
