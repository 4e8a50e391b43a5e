// Package secret manages pairgate's pairing secret: 32 random bytes in a file
// only its owner can read, from which every purpose-specific key is derived
// with HKDF-SHA256.
package secret

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Size is the length of the pairing secret in bytes.
const Size = 32

// ErrInsecure is wrapped when the secret file is readable by group or others.
var ErrInsecure = errors.New("pairing secret is readable by other users")

// Secret is the loaded pairing secret.
type Secret struct {
	key []byte
}

// Derive returns a 32-byte subkey for one purpose, e.g. "pairgate/v1/dm-code".
// Distinct purposes give independent keys, so no key serves two jobs.
func (s Secret) Derive(purpose string) []byte {
	k, err := hkdf.Key(sha256.New, s.key, nil, purpose, 32)
	if err != nil {
		// hkdf.Key fails only for lengths over 255*32 bytes.
		panic("secret: hkdf: " + err.Error())
	}
	return k
}

// LoadOrCreate reads the secret at path, creating it (and its directory,
// 0700) when it does not exist. A new file gets mode 0600 at creation and is
// complete before it appears under its name, so a concurrent reader never
// sees a partial key.
func LoadOrCreate(path string) (Secret, error) {
	s, err := Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	if err := create(path); err != nil && !errors.Is(err, fs.ErrExist) {
		return Secret{}, err
	}
	// Whoever won the race to create it, read what is there now.
	return Load(path)
}

// Load reads an existing secret. It refuses a file readable by group or
// others, and says how to fix it.
func Load(path string) (Secret, error) {
	f, err := os.Open(path)
	if err != nil {
		return Secret{}, fmt.Errorf("read pairing secret: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Secret{}, fmt.Errorf("read pairing secret: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return Secret{}, fmt.Errorf("pairing secret %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return Secret{}, fmt.Errorf("%w: %s has mode %04o; fix it with: chmod 600 %s", ErrInsecure, path, perm, path)
	}
	buf := make([]byte, Size+1)
	n, err := io.ReadFull(f, buf)
	if n != Size || !errors.Is(err, io.ErrUnexpectedEOF) {
		size := fmt.Sprintf("%d bytes", n)
		if n > Size {
			size = "more"
		}
		return Secret{}, fmt.Errorf("pairing secret %s must hold exactly %d bytes, it holds %s: restore it from a backup (deleting it invalidates every pending code)", path, Size, size)
	}
	return Secret{key: buf[:Size]}, nil
}

// create writes a new secret to a temporary 0600 file and links it into
// place; link fails rather than replace an existing secret.
func create(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create pairing secret directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".pairing.key-*") // CreateTemp uses 0600
	if err != nil {
		return fmt.Errorf("create pairing secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	key := make([]byte, Size)
	rand.Read(key)
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return fmt.Errorf("write pairing secret: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write pairing secret: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write pairing secret: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("install pairing secret: %w", err)
	}
	return nil
}

// FromBytes makes a Secret from key material, for tests and embedders that
// keep the secret elsewhere. It must be Size bytes.
func FromBytes(key []byte) (Secret, error) {
	if len(key) != Size {
		return Secret{}, fmt.Errorf("pairing secret must be %d bytes, got %d", Size, len(key))
	}
	return Secret{key: append([]byte(nil), key...)}, nil
}
