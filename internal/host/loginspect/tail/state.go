package tail

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// stateVersion is the version of the state file format.
const stateVersion = 1

// maxStateBytes bounds the state file read at start (4096 files of a few hundred bytes each).
const maxStateBytes = 16 << 20

type stateFile struct {
	Version int          `json:"version"`
	Files   []stateEntry `json:"files"`
}

type stateEntry struct {
	Path      string      `json:"path"`
	Spec      int         `json:"spec"`
	ID        fileID      `json:"id"`
	FP        fingerprint `json:"fp"`
	Offset    int64       `json:"offset"`
	Size      int64       `json:"size"`
	ModNs     int64       `json:"modNs"`
	Skipping  bool        `json:"skipping,omitempty"`
	Draining  bool        `json:"draining,omitempty"`
	WatchOnly bool        `json:"watchOnly,omitempty"`
}

type fingerprintJSON struct {
	Len int64  `json:"len"`
	Sum string `json:"sha256"`
}

func (f fingerprint) MarshalJSON() ([]byte, error) {
	return json.Marshal(fingerprintJSON{Len: f.Len, Sum: hex.EncodeToString(f.Sum[:])})
}

func (f *fingerprint) UnmarshalJSON(b []byte) error {
	var j fingerprintJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	sum, err := hex.DecodeString(j.Sum)
	if err != nil || len(sum) != len(f.Sum) {
		return fmt.Errorf("fingerprint: bad sha256 %q", j.Sum)
	}
	if j.Len < 0 || j.Len > 64<<10 {
		return fmt.Errorf("fingerprint: length %d out of range", j.Len)
	}
	f.Len = j.Len
	copy(f.Sum[:], sum)
	return nil
}

// loadState reads the state file, when there is one. A missing file is a first start; an
// unreadable or malformed one is an error (reading every log again from its start, or from its
// end, would report old events again or lose new ones).
func (t *Follower) loadState() error {
	t.saved = map[string]stateEntry{}
	if t.opts.statePath == "" {
		return nil
	}
	f, err := os.Open(t.opts.statePath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	if fi.Size() > maxStateBytes {
		return fmt.Errorf("%w: %s is %d bytes (at most %d)", ErrState, t.opts.statePath, fi.Size(), maxStateBytes)
	}
	var st stateFile
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrState, t.opts.statePath, err)
	}
	if st.Version != stateVersion {
		return fmt.Errorf("%w: %s: version %d (want %d)", ErrState, t.opts.statePath, st.Version, stateVersion)
	}
	t.resumed = true
	for _, e := range st.Files {
		if e.Offset < 0 || e.Size < 0 || !filepath.IsAbs(e.Path) {
			return fmt.Errorf("%w: %s: bad entry for %q", ErrState, t.opts.statePath, e.Path)
		}
		spec, ok := t.specOf(e.Path)
		if !ok {
			continue // no longer configured
		}
		e.Spec = spec
		key := e.Path
		if e.Draining {
			key = rotatedKey(e)
		}
		t.saved[key] = e
	}
	return nil
}

// specOf returns the spec a path belongs to.
func (t *Follower) specOf(path string) (int, bool) {
	for i, s := range t.specs {
		if s.Pattern == path {
			return i, true
		}
		if ok, _ := filepath.Match(s.Pattern, path); ok {
			return i, true
		}
	}
	return 0, false
}

// maybeSave writes the state when it changed and SaveInterval passed (always when force).
func (t *Follower) maybeSave(force bool) error {
	if t.opts.statePath == "" || !t.dirty {
		return nil
	}
	now := t.opts.now()
	if !force && now.Sub(t.lastSave) < t.opts.saveInterval {
		return nil
	}
	st := stateFile{Version: stateVersion}
	for _, p := range t.order {
		fl := t.files[p]
		if fl == nil {
			continue
		}
		st.Files = append(st.Files, entryOf(fl, false))
	}
	for _, fl := range t.draining {
		st.Files = append(st.Files, entryOf(fl, true))
	}
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("tail: encode state: %w", err)
	}
	if err := writeAtomic(t.opts.statePath, data); err != nil {
		return fmt.Errorf("tail: save state: %w", err)
	}
	t.stats.StateSaves++
	t.lastSave = now
	t.dirty = false
	return nil
}

func entryOf(fl *file, draining bool) stateEntry {
	return stateEntry{Path: fl.path, Spec: fl.spec, ID: fl.id, FP: fl.fp, Offset: fl.offset, Size: fl.size, ModNs: fl.modNs,
		Skipping: fl.skipping, Draining: draining, WatchOnly: fl.watchOnly}
}

// writeAtomic replaces path with data: a temporary file beside it, fsync, rename, fsync of the
// directory.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tail-state-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name) // after a successful rename there is nothing to remove
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
	if err := os.Chmod(name, 0o600); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
