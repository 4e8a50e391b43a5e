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

// ErrInsecure is wrapped when a private file (the pairing secret, or another
// file read with ReadPrivate) is readable by group or others. The error
// that wraps it names the file and says how to fix it.
var ErrInsecure = errors.New("readable by group or others")

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
	key := make([]byte, Size)
	rand.Read(key)
	if err := WriteNew(path, key); err != nil && !errors.Is(err, fs.ErrExist) {
		return Secret{}, fmt.Errorf("create pairing secret: %w", err)
	}
	// Whoever won the race to create it, read what is there now.
	return Load(path)
}

// Load reads an existing secret. It refuses a file readable by group or
// others, and says how to fix it.
func Load(path string) (Secret, error) {
	buf, err := ReadPrivate(path, "pairing secret")
	if err != nil {
		return Secret{}, err
	}
	if len(buf) != Size {
		return Secret{}, fmt.Errorf("pairing secret %s must hold exactly %d bytes, it holds %d: restore it from a backup (deleting it invalidates every pending code)", path, Size, len(buf))
	}
	return Secret{key: buf}, nil
}

// maxPrivate bounds what ReadPrivate reads: secrets are small.
const maxPrivate = 64 << 10

// ReadPrivate reads a small secret file that only its owner may read. what
// says what the file holds ("pairing secret", "admin token"), and every
// error names the file with it. A file readable by group or others is
// refused with the chmod that fixes it (the error wraps ErrInsecure); so is
// anything that is not a regular file.
func ReadPrivate(path, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s is not a regular file", what, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s %s has mode %04o, %w: fix it with: chmod 600 %s", what, path, perm, ErrInsecure, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPrivate+1))
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", what, path, err)
	}
	if len(data) > maxPrivate {
		return nil, fmt.Errorf("%s %s is larger than %d bytes: is it the right file?", what, path, maxPrivate)
	}
	return data, nil
}

// WriteNew writes data to a new file at path, mode 0600 from creation (its
// directory 0700 if missing). The data goes to a temporary file that is
// linked into place only when complete and synced, so a concurrent reader
// never sees a partial secret; an existing file is never replaced (the error
// wraps fs.ErrExist).
func WriteNew(path string, data []byte) error { return writePrivate(path, data, false) }

// WriteReplace is WriteNew that atomically replaces an existing file (by
// rename), for secrets that are rewritten, such as a device's credentials.
// At no moment is the data in a file others may read.
func WriteReplace(path string, data []byte) error { return writePrivate(path, data, true) }

func writePrivate(path string, data []byte, replace bool) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*") // CreateTemp uses 0600 and O_EXCL
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once linked or renamed away
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if replace {
		err = os.Rename(tmp.Name(), path)
	} else {
		err = os.Link(tmp.Name(), path)
	}
	if err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // make the new name durable; best effort
		d.Close()
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
