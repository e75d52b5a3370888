package integrity

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
)

// readSystemFile reads a file of at most maxSystemFile bytes; a missing
// file is (nil, nil).
func readSystemFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSystemFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if len(b) > maxSystemFile {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrTooLarge, p, maxSystemFile)
	}
	return b, nil
}

// lines calls f for each line of b without its end (LF or CRLF), with
// its 1-based number, skipping blank lines and "#" comments.
func lines(b []byte, f func(n int, line string)) {
	n := 0
	for len(b) > 0 {
		n++
		i := bytes.IndexByte(b, '\n')
		var l []byte
		if i < 0 {
			l, b = b, nil
		} else {
			l, b = b[:i], b[i+1:]
		}
		l = bytes.TrimSuffix(l, []byte("\r"))
		if t := bytes.TrimSpace(l); len(t) == 0 || t[0] == '#' {
			continue
		}
		f(n, string(l))
	}
}

// uniqueKey returns key, or key#2, key#3 ... when it is taken: a duplicate
// user name is itself worth reporting, not merging.
func uniqueKey(seen map[string]bool, key string) string {
	k := key
	for i := 2; seen[k]; i++ {
		k = key + "#" + strconv.Itoa(i)
	}
	seen[k] = true
	return k
}

// UserCollector records the accounts of /etc/passwd with the metadata of
// /etc/shadow. Attributes: uid, gid, gecos, home, shell; from shadow:
// password ("set", "locked", "empty" or "none"), algorithm ("yescrypt",
// "sha512" ...), passwordDigest (8 bytes of HMAC-SHA256 of the hash with
// the baseline's secret key: it changes when the password does, and is
// useless for cracking without the key), lastChange, min, max, warn,
// inactive, expire. The hash itself is never stored.
type UserCollector struct{}

var _ Collector = UserCollector{}

func (UserCollector) Name() string       { return "users" }
func (UserCollector) Kind() Kind         { return KindUser }
func (UserCollector) Triggers() []string { return []string{"/etc/passwd", "/etc/shadow"} }
func (UserCollector) Volatile() []string { return nil }

func (c UserCollector) Collect(ctx context.Context, env Env) ([]Object, error) {
	passwd, err := readSystemFile(env.Path("/etc/passwd"))
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	shadow, err := readSystemFile(env.Path("/etc/shadow"))
	if err != nil && !errors.Is(err, fs.ErrPermission) {
		return nil, fmt.Errorf("users: %w", err)
	}
	return ParseUsers(passwd, shadow, env.Key), nil
}

// ParseUsers parses passwd(5) and shadow(5) text (shadow may be nil).
// Lines with fewer fields than the format has are skipped.
func ParseUsers(passwd, shadow, key []byte) []Object {
	sh := map[string][]string{}
	lines(shadow, func(_ int, l string) {
		f := strings.Split(l, ":")
		if len(f) >= 2 {
			if _, dup := sh[f[0]]; !dup {
				sh[f[0]] = f
			}
		}
	})
	seen := map[string]bool{}
	var out []Object
	lines(passwd, func(_ int, l string) {
		f := strings.Split(l, ":")
		if len(f) < 7 || len(out) >= maxObjects {
			return
		}
		a := map[string]string{
			"uid": SafeText(f[2]), "gid": SafeText(f[3]), "gecos": SafeText(f[4]),
			"home": SafeText(f[5]), "shell": SafeText(f[6]),
		}
		if s, ok := sh[f[0]]; ok {
			shadowAttrs(a, s, key)
		}
		for k, v := range a {
			a[k] = truncate(v)
		}
		out = append(out, Object{Kind: KindUser, Key: uniqueKey(seen, truncate(SafeText(f[0]))), Attrs: a})
	})
	return out
}

func shadowAttrs(a map[string]string, f []string, key []byte) {
	hash := f[1]
	state := "set"
	body := hash
	switch {
	case hash == "":
		state = "empty"
	case hash == "*" || hash == "!" || hash == "!!" || hash == "!*":
		state = "none"
	case strings.HasPrefix(hash, "!"):
		state, body = "locked", strings.TrimLeft(hash, "!")
	}
	a["password"] = state
	if alg := hashAlgorithm(body); alg != "" {
		a["algorithm"] = alg
	}
	if state == "set" || state == "locked" {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(body))
		a["passwordDigest"] = hex.EncodeToString(m.Sum(nil)[:8])
	}
	names := []string{"", "", "lastChange", "min", "max", "warn", "inactive", "expire"}
	for i := 2; i < len(f) && i < len(names); i++ {
		if f[i] != "" {
			a[names[i]] = SafeText(f[i])
		}
	}
}

// hashAlgorithm names the crypt(5) scheme of a hash by its prefix.
func hashAlgorithm(h string) string {
	for _, p := range []struct{ prefix, name string }{
		{"$y$", "yescrypt"}, {"$gy$", "gost-yescrypt"}, {"$7$", "scrypt"}, {"$6$", "sha512"},
		{"$5$", "sha256"}, {"$2b$", "bcrypt"}, {"$2a$", "bcrypt"}, {"$2y$", "bcrypt"},
		{"$1$", "md5"}, {"$sha1$", "sha1"}, {"$md5", "sun-md5"},
	} {
		if strings.HasPrefix(h, p.prefix) {
			return p.name
		}
	}
	if len(h) == 13 {
		return "des"
	}
	return ""
}

// GroupCollector records the groups of /etc/group. Attributes: gid,
// members (sorted, comma separated).
type GroupCollector struct{}

var _ Collector = GroupCollector{}

func (GroupCollector) Name() string       { return "groups" }
func (GroupCollector) Kind() Kind         { return KindGroup }
func (GroupCollector) Triggers() []string { return []string{"/etc/group"} }
func (GroupCollector) Volatile() []string { return nil }

func (GroupCollector) Collect(ctx context.Context, env Env) ([]Object, error) {
	b, err := readSystemFile(env.Path("/etc/group"))
	if err != nil {
		return nil, fmt.Errorf("groups: %w", err)
	}
	return ParseGroups(b), nil
}

// ParseGroups parses group(5) text.
func ParseGroups(b []byte) []Object {
	seen := map[string]bool{}
	var out []Object
	lines(b, func(_ int, l string) {
		f := strings.Split(l, ":")
		if len(f) < 4 || len(out) >= maxObjects {
			return
		}
		var members []string
		for _, m := range strings.Split(f[3], ",") {
			if m = strings.TrimSpace(m); m != "" {
				members = append(members, m)
			}
		}
		slices.Sort(members)
		members = slices.Compact(members)
		out = append(out, Object{Kind: KindGroup, Key: uniqueKey(seen, truncate(SafeText(f[0]))), Attrs: map[string]string{
			"gid": SafeText(f[2]), "members": truncate(SafeText(strings.Join(members, ","))),
		}})
	})
	return out
}
