// Package seal encrypts what a manager writes to its data dir: Raft log
// entries (one sealed blob each) and snapshots (a stream of sealed
// chunks), with AES-256-GCM under the manager's data key, and keeps that
// key in the data dir (keyfile.go), either as it is (file mode 0600) or
// wrapped with the cluster's unlock key (autolock).
//
// Sealed data starts with a magic that no unsealed data of shoal starts
// with (a zero byte: a protobuf field number 0 is invalid, and Raft's own
// entries are msgpack maps), so a data dir written before encryption keeps
// working: what is not sealed is read as it is.
package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// KeySize is the size of data keys and unlock keys (AES-256).
const KeySize = 32

// blobMagic starts every sealed blob; streamMagic every sealed stream.
var (
	blobMagic   = []byte("\x00shoal-sealed-1\x00")
	streamMagic = []byte("\x00shoal-sealed-stream-1\x00")
)

var (
	// ErrCorrupt: sealed data that does not open: damaged, truncated, or
	// sealed under another key.
	ErrCorrupt = errors.New("sealed data does not open")
	// ErrKeySize: a key that is not KeySize bytes.
	ErrKeySize = errors.New("key size")
)

// Box seals and opens blobs under one key.
type Box struct{ aead cipher.AEAD }

// NewBox returns a Box for a KeySize-byte key.
func NewBox(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrKeySize, len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Seal returns plaintext sealed: the magic, a random nonce, the ciphertext.
func (b *Box) Seal(plaintext []byte) []byte {
	ns := b.aead.NonceSize()
	out := make([]byte, len(blobMagic)+ns, len(blobMagic)+ns+len(plaintext)+b.aead.Overhead())
	copy(out, blobMagic)
	nonce := out[len(blobMagic):]
	if _, err := rand.Read(nonce); err != nil {
		panic(fmt.Sprintf("seal: random nonce: %v", err)) // crypto/rand does not fail on Linux
	}
	return b.aead.Seal(out, nonce, plaintext, blobMagic)
}

// Open returns the plaintext of data sealed by Seal, or data itself when it
// is not sealed (written before encryption was on).
func (b *Box) Open(data []byte) ([]byte, error) {
	if !IsSealed(data) {
		return data, nil
	}
	rest := data[len(blobMagic):]
	ns := b.aead.NonceSize()
	if len(rest) < ns+b.aead.Overhead() {
		return nil, fmt.Errorf("%w: %d bytes, too short", ErrCorrupt, len(data))
	}
	out, err := b.aead.Open(nil, rest[:ns], rest[ns:], blobMagic)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return out, nil
}

// IsSealed reports whether data was written by Seal.
func IsSealed(data []byte) bool { return bytes.HasPrefix(data, blobMagic) }

// NewKey returns a random KeySize-byte key.
func NewKey() []byte {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		panic(fmt.Sprintf("seal: random key: %v", err))
	}
	return k
}
