package server

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"mamori/internal/store"
)

// keyFileName is the server key in the data dir (32 random bytes, 0600).
const keyFileName = "server.key"

// secretAAD binds ciphertexts to their purpose, so a registry secret cannot
// be replayed as anything else encrypted under the same key.
var secretAAD = []byte("mamori/registry-secret/v1")

// ErrKeyMismatch: the server key is not the one registry secrets were encrypted with.
var ErrKeyMismatch = errors.New("server: the server key does not match the one the store's registry secrets were encrypted with")

// secretBox encrypts registry passwords with AES-256-GCM.
type secretBox struct {
	aead  cipher.AEAD
	keyID string
}

func newSecretBox(key []byte) (*secretBox, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("%w: server key is %d bytes, want 32", ErrConfig, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("server: key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("server: key: %w", err)
	}
	id := sha256.Sum256(append([]byte("mamori key id\x00"), key...))
	return &secretBox{aead: aead, keyID: hex.EncodeToString(id[:8])}, nil
}

// seal returns nonce || ciphertext.
func (b *secretBox) seal(plain []byte) ([]byte, error) {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("server: nonce: %w", err)
	}
	return b.aead.Seal(nonce, nonce, plain, secretAAD), nil
}

func (b *secretBox) open(sealed []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n+b.aead.Overhead() {
		return nil, errors.New("server: sealed secret too short")
	}
	p, err := b.aead.Open(nil, sealed[:n], sealed[n:], secretAAD)
	if err != nil {
		return nil, fmt.Errorf("server: decrypt secret: %w", ErrKeyMismatch)
	}
	return p, nil
}

// parseKey reads a key given as base64 (std or URL, padded or not) or hex.
func parseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%w: %s must be 32 bytes in hex or base64", ErrConfig, EnvServerKey)
}

// loadServerKey takes the key from env (MAMORI_SERVER_KEY) or the data
// dir's key file, creating the file (0600) on first start, and checks it
// against the key ID the store remembers.
func loadServerKey(ctx context.Context, dataDir, env string, st store.MetaStore) (*secretBox, error) {
	var key []byte
	var err error
	if env != "" {
		if key, err = parseKey(env); err != nil {
			return nil, err
		}
	} else {
		p := filepath.Join(dataDir, keyFileName)
		raw, rerr := os.ReadFile(p)
		switch {
		case rerr == nil:
			if key, err = parseKey(string(raw)); err != nil {
				return nil, fmt.Errorf("server: key file %s: %w", p, err)
			}
			if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o077 != 0 {
				return nil, fmt.Errorf("%w: key file %s is readable by others (mode %v): chmod 600 it", ErrConfig, p, fi.Mode().Perm())
			}
		case errors.Is(rerr, os.ErrNotExist):
			key = make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return nil, fmt.Errorf("server: generate key: %w", err)
			}
			if err := writeFileExcl(p, []byte(base64.StdEncoding.EncodeToString(key)+"\n")); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("server: read key file %s: %w", p, rerr)
		}
	}
	box, err := newSecretBox(key)
	if err != nil {
		return nil, err
	}
	stored, err := st.GetMeta(ctx, store.MetaServerKeyID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if err := st.SetMeta(ctx, store.MetaServerKeyID, box.keyID); err != nil {
			return nil, fmt.Errorf("server: record key id: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("server: read key id: %w", err)
	case stored != box.keyID:
		return nil, fmt.Errorf("%w (key id %s, store expects %s): restore the original %s or %s", ErrKeyMismatch, box.keyID, stored, keyFileName, EnvServerKey)
	}
	return box, nil
}

// writeFileExcl creates p with mode 0600, failing if it exists, and syncs it.
func writeFileExcl(p string, data []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("server: create %s: %w", p, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("server: write %s: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("server: sync %s: %w", p, err)
	}
	return f.Close()
}
