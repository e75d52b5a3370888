package integrity

import (
	"context"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Limits of the sudoers walk (sudo itself allows 128 nested includes).
const (
	maxSudoersDepth = 16
	maxSudoersFiles = 1024
)

// SudoersCollector records the entries of /etc/sudoers and the files it
// includes (@include, @includedir and their # forms). An entry is a
// logical line (continuations joined, comments dropped, white space
// collapsed); its key is "<file>: <entry>". Attributes: file, line.
type SudoersCollector struct{}

var _ Collector = SudoersCollector{}

func (SudoersCollector) Name() string       { return "sudoers" }
func (SudoersCollector) Kind() Kind         { return KindSudoers }
func (SudoersCollector) Triggers() []string { return []string{"/etc/sudoers", "/etc/sudoers.d"} }
func (SudoersCollector) Volatile() []string { return nil }

func (SudoersCollector) Collect(ctx context.Context, env Env) ([]Object, error) {
	w := sudoersWalk{env: env, seen: map[string]bool{}, keys: map[string]bool{}}
	if err := w.file(ctx, "/etc/sudoers", 0); err != nil {
		return nil, fmt.Errorf("sudoers: %w", err)
	}
	return w.out, nil
}

type sudoersWalk struct {
	env   Env
	seen  map[string]bool
	keys  map[string]bool
	files int
	out   []Object
}

func (w *sudoersWalk) file(ctx context.Context, p string, depth int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.seen[p] || depth > maxSudoersDepth || w.files >= maxSudoersFiles {
		return nil
	}
	w.seen[p] = true
	w.files++
	b, err := readSystemFile(w.env.Path(p))
	if err != nil || b == nil {
		return err
	}
	for _, e := range ParseSudoers(b) {
		if inc, dir, ok := sudoersInclude(e.text); ok {
			if !strings.HasPrefix(inc, "/") {
				inc = path.Join(path.Dir(p), inc) // sudo 1.9.1: relative to the including file
			}
			inc = path.Clean(inc)
			if dir {
				err = w.dir(ctx, inc, depth+1)
			} else {
				err = w.file(ctx, inc, depth+1)
			}
			if err != nil {
				return err
			}
		}
		if len(w.out) >= maxObjects {
			return nil
		}
		key := uniqueKey(w.keys, truncate(SafeText(p+": "+e.text)))
		w.out = append(w.out, Object{Kind: KindSudoers, Key: key, Attrs: map[string]string{"file": SafeText(p), "line": strconv.Itoa(e.line)}})
	}
	return nil
}

// dir reads the files of an include directory as sudo does: in lexical
// order, skipping names that end in "~" or contain a ".".
func (w *sudoersWalk) dir(ctx context.Context, d string, depth int) error {
	ents, err := os.ReadDir(w.env.Path(d))
	if err != nil {
		return nil // a missing include directory is not an error for sudo either
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		n := e.Name()
		if strings.HasSuffix(n, "~") || strings.Contains(n, ".") || !e.Type().IsRegular() {
			continue
		}
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := w.file(ctx, d+"/"+n, depth); err != nil {
			return err
		}
	}
	return nil
}

type sudoersEntry struct {
	line int
	text string
}

// ParseSudoers splits sudoers(5) text into entries: logical lines with
// backslash continuations joined, comments removed and white space
// collapsed. "#include", "#includedir" and "#<uid>" user specs are
// entries, not comments.
func ParseSudoers(b []byte) []sudoersEntry {
	var out []sudoersEntry
	var cur strings.Builder
	start := 0
	n := 0
	for _, raw := range strings.Split(string(b), "\n") {
		n++
		l := strings.TrimSuffix(raw, "\r")
		if cur.Len() == 0 {
			start = n
		}
		cont := strings.HasSuffix(l, "\\")
		if cont {
			l = strings.TrimSuffix(l, "\\")
		}
		cur.WriteString(l)
		cur.WriteByte(' ')
		if cont {
			continue
		}
		text := strings.Join(strings.Fields(stripSudoersComment(cur.String())), " ")
		cur.Reset()
		if text != "" && len(out) < maxObjects {
			out = append(out, sudoersEntry{line: start, text: text})
		}
	}
	return out
}

// stripSudoersComment drops a "#" comment: a "#" that does not start
// "#include"/"#includedir" at the beginning of the line and is not
// followed by a digit (a uid: "#1000 ALL=(ALL) ALL", "(#0)").
func stripSudoersComment(l string) string {
	t := strings.TrimSpace(l)
	if strings.HasPrefix(t, "#include") {
		return t
	}
	for i := 0; i < len(l); i++ {
		if l[i] != '#' {
			continue
		}
		if i+1 < len(l) && l[i+1] >= '0' && l[i+1] <= '9' {
			continue
		}
		return l[:i]
	}
	return l
}

// sudoersInclude recognises include lines.
func sudoersInclude(text string) (target string, dir, ok bool) {
	for _, p := range []struct {
		prefix string
		dir    bool
	}{{"@includedir ", true}, {"#includedir ", true}, {"@include ", false}, {"#include ", false}} {
		if strings.HasPrefix(text, p.prefix) {
			t := strings.Trim(strings.TrimSpace(text[len(p.prefix):]), `"`)
			return t, p.dir, t != ""
		}
	}
	return "", false, false
}
