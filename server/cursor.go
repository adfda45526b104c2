package server

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"sync"
)

// Paging cursors (the _cursor of next and previous links) hold a position
// in the ordered matches: the last entry's id and sort keys, or a
// position in the change log. Sent in clear they would hand a
// pseudonymised caller real ids and identifying sort values (_sort=
// identifier, family, birthdate…), and count the hidden writes between
// two history pages. They are sealed with AES-GCM under a key drawn when
// the process starts: opaque and unforgeable, valid until the hub
// restarts (a stale cursor answers 400: start the search again). A cursor
// is bound (AEAD associated data) to its use: the caller (subject and
// purpose) and the search or history it pages, so it works for nothing
// else.
var cursorAEAD = sync.OnceValue(func() cipher.AEAD {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic("cursor key: " + err.Error())
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
})

// sealCursor seals plain for use (what the cursor is bound to: a search
// or a history, and its caller): it opens for that use only.
func sealCursor(use string, plain []byte) string {
	aead := cursorAEAD()
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("cursor nonce: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, []byte(use)))
}

var errCursor = errors.New("invalid cursor")

// openCursor returns what sealCursor sealed for use, or errCursor.
func openCursor(use, s string) ([]byte, error) {
	aead := cursorAEAD()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < aead.NonceSize() {
		return nil, errCursor
	}
	plain, err := aead.Open(nil, b[:aead.NonceSize()], b[aead.NonceSize():], []byte(use))
	if err != nil {
		return nil, errCursor
	}
	return plain, nil
}
