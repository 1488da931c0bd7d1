package seal

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeyFileName is the data key's file in the data dir.
const KeyFileName = "data-key.json"

// unlockPrefix starts the text form of an unlock key.
const unlockPrefix = "SHLKEY-1-"

var (
	// ErrNoKeyFile: the data dir has no data key yet.
	ErrNoKeyFile = errors.New("no data key file")
	// ErrLocked: the data key is wrapped and no unlock key was given.
	ErrLocked = errors.New("locked: run shoalctl cluster unlock")
	// ErrWrongUnlockKey: the unlock key does not open the data key.
	ErrWrongUnlockKey = errors.New("wrong unlock key")
	// ErrBadUnlockKey: text that is not an unlock key.
	ErrBadUnlockKey = errors.New("not an unlock key")
)

// keyFile is the data key as stored: Key as it is, or Wrapped (sealed
// with the unlock key).
type keyFile struct {
	Format  int    `json:"format"`
	Key     []byte `json:"key,omitempty"`
	Wrapped []byte `json:"wrapped,omitempty"`
}

// KeyState is what the data dir's key file says.
type KeyState struct {
	// Key is the data key; nil when Locked.
	Key    []byte
	Locked bool
}

// LoadKey reads the data key of dir. A wrapped key needs unlock (nil: the
// key stays locked, ErrLocked is not returned; the state says Locked). An
// unlock key that does not open it fails with ErrWrongUnlockKey.
func LoadKey(dir string, unlock []byte) (KeyState, error) {
	path := filepath.Join(dir, KeyFileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return KeyState{}, fmt.Errorf("%s: %w", path, ErrNoKeyFile)
	}
	if err != nil {
		return KeyState{}, fmt.Errorf("data key: %w", err)
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil || kf.Format != 1 {
		return KeyState{}, fmt.Errorf("data key %s: unreadable (format %d): %v", path, kf.Format, err)
	}
	if len(kf.Wrapped) == 0 {
		if len(kf.Key) != KeySize {
			return KeyState{}, fmt.Errorf("data key %s: %w: %d bytes", path, ErrKeySize, len(kf.Key))
		}
		return KeyState{Key: kf.Key}, nil
	}
	if unlock == nil {
		return KeyState{Locked: true}, nil
	}
	box, err := NewBox(unlock)
	if err != nil {
		return KeyState{Locked: true}, fmt.Errorf("%w: %w", ErrWrongUnlockKey, err)
	}
	key, err := box.Open(kf.Wrapped)
	if err != nil || len(key) != KeySize {
		return KeyState{Locked: true}, ErrWrongUnlockKey
	}
	return KeyState{Key: key}, nil
}

// StoreKey writes the data key of dir, wrapped with unlock when unlock is
// not nil, atomically and with mode 0600.
func StoreKey(dir string, key, unlock []byte) error {
	if len(key) != KeySize {
		return fmt.Errorf("data key: %w: %d bytes", ErrKeySize, len(key))
	}
	kf := keyFile{Format: 1, Key: key}
	if unlock != nil {
		box, err := NewBox(unlock)
		if err != nil {
			return fmt.Errorf("unlock key: %w", err)
		}
		kf = keyFile{Format: 1, Wrapped: box.Seal(key)}
	}
	b, err := json.Marshal(kf)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, KeyFileName)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("data key: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("data key: %w", err)
	}
	return nil
}

// FormatUnlockKey is the text form of an unlock key, as shoalctl shows it.
func FormatUnlockKey(key []byte) string {
	return unlockPrefix + base64.RawURLEncoding.EncodeToString(key)
}

// ParseUnlockKey reads FormatUnlockKey's text. Errors never repeat it.
func ParseUnlockKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, unlockPrefix) {
		return nil, fmt.Errorf("%w: it must start with %s (%d characters given)", ErrBadUnlockKey, unlockPrefix, len(s))
	}
	key, err := base64.RawURLEncoding.DecodeString(s[len(unlockPrefix):])
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("%w: the part after %s is not %d bytes of base64url (%d characters given)", ErrBadUnlockKey, unlockPrefix, KeySize, len(s))
	}
	return key, nil
}
