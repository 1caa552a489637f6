package store

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// MinKeyBytes is the shortest evidence key accepted: HMAC-SHA256's own block of security.
const MinKeyBytes = 32

// Option adjusts how Open opens a store.
type Option func(*Store)

// WithKey keys the evidence chain: records are appended with an HMAC-SHA256 under key, and
// Verify checks them. Without a key a store can be read and verified only in part (the records
// written before the chain was keyed, and the links between all records); Append refuses. The key
// must be kept outside the database: whoever holds both can rewrite the chain undetected.
func WithKey(key []byte) Option {
	return func(s *Store) { s.key = append([]byte(nil), key...) }
}

// ParseKey decodes an evidence key written as hex (`openssl rand -hex 32`) or standard base64
// (`openssl rand -base64 32`); surrounding whitespace is ignored. A text of hex digits only is
// read as hex. It must decode to at least MinKeyBytes bytes. Errors never repeat the text: it is
// a secret.
func ParseKey(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, errors.New("is empty")
	}
	var key []byte
	if strings.Trim(text, "0123456789abcdefABCDEF") == "" {
		k, err := hex.DecodeString(text)
		if err != nil {
			return nil, errors.New("is not valid hex (an odd number of digits?)")
		}
		key = k
	} else {
		k, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			return nil, errors.New("is neither hex nor base64")
		}
		key = k
	}
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("is %d bytes long: at least %d are needed (generate one with `openssl rand -hex 32`)", len(key), MinKeyBytes)
	}
	return key, nil
}

// NewKey is a fresh random evidence key, for the demo and tests.
func NewKey() []byte {
	key := make([]byte, MinKeyBytes)
	rand.Read(key) // never fails: it crashes the program rather than return weak bytes
	return key
}
