package pairing

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
)

// Alphabet is the set of characters in a pairing code: no 0/O or 1/I, so a
// code read aloud or copied by hand survives. It has 32 symbols, so taking
// five bits of uniformly random input per character is unbiased.
const Alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// CodeLength is the number of characters in a pairing code.
const CodeLength = 8

// RequestIDPrefix starts every request id, which is how the CLI tells an id
// from a code.
const RequestIDPrefix = "req_"

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// codec makes codes and their hashes. A request's code is a keyed function
// of its random request id, so the store never holds a usable code (only the
// id and a keyed hash) and yet the same code can be sent again later, from
// any process that holds the pairing secret.
type codec struct {
	codeKey []byte // derives a code from a request id
	hashKey []byte // hashes a code for storage and lookup
}

// newRequestID draws 128 random bits.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	return RequestIDPrefix + idEncoding.EncodeToString(b[:])
}

// code returns the code of a request: eight characters, each from five bits
// of HMAC-SHA256(codeKey, id), which is uniform because the id is random.
func (c codec) code(requestID string) string {
	m := hmac.New(sha256.New, c.codeKey)
	m.Write([]byte(requestID))
	sum := m.Sum(nil)
	var out [CodeLength]byte
	for i := range out {
		out[i] = Alphabet[sum[i]&31]
	}
	return string(out[:])
}

// hash returns the stored form of a canonical code. Lookups go by this keyed
// hash, so comparing it in an index reveals nothing about any code.
func (c codec) hash(code string) []byte {
	m := hmac.New(sha256.New, c.hashKey)
	m.Write([]byte(code))
	return m.Sum(nil)
}

// NormalizeCode turns what an operator typed into a canonical code:
// case-insensitive, spaces and one hyphen ignored ("abcd-efgh" → "ABCDEFGH").
// The error says what is wrong and never repeats the input.
func NormalizeCode(input string) (string, error) {
	if len(input) > 64 {
		return "", fmt.Errorf("%w: a pairing code has %d characters, this input has %d", ErrInvalidInput, CodeLength, len(input))
	}
	var b strings.Builder
	hyphens := 0
	for _, r := range input {
		switch {
		case r == ' ':
			continue
		case r == '-':
			hyphens++
			if hyphens > 1 {
				return "", fmt.Errorf("%w: a pairing code may contain at most one hyphen", ErrInvalidInput)
			}
			continue
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		}
		if r > 0x7f || !strings.ContainsRune(Alphabet, r) {
			return "", fmt.Errorf("%w: pairing codes use only the characters %s (no 0, O, 1 or I)", ErrInvalidInput, Alphabet)
		}
		b.WriteRune(r)
	}
	if b.Len() != CodeLength {
		return "", fmt.Errorf("%w: a pairing code has %d characters, this one has %d", ErrInvalidInput, CodeLength, b.Len())
	}
	return b.String(), nil
}
