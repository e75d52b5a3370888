package loginspect

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Reading the journal: a pure-Go reader of journal files would need to follow journald's file
// format (hash tables, entry arrays, compressed fields, files rotated under the reader) and
// no well-kept Go library does; go-systemd's sdjournal links libsystemd with cgo. journalctl
// is the format's reference reader and is installed wherever journald runs, so the journal is
// read through `journalctl --output=json --follow`, run as a bounded subprocess:
//
//   - its output is read line by line, each line at most maxJournalLine (longer entries are
//     skipped and counted; journalctl already prints fields over 4 KiB as null);
//   - its cursor (__CURSOR) is saved after the entries it names were processed, so a restart
//     resumes with --after-cursor and no entry is read twice or skipped;
//   - it is stopped with SIGTERM (then killed after journalWaitDelay) when the context ends,
//     and started again with back-off when it exits;
//   - a cursor journalctl refuses (the entry was vacuumed) is dropped after one failed start,
//     and reading restarts from the entries that follow now, counted as a gap.

const (
	maxJournalLine   = 1 << 20
	journalWaitDelay = 3 * time.Second
	maxJournalStderr = 4 << 10
	maxJournalBack   = 30 * time.Second
)

// journalReader runs journalctl and hands each entry's line to process, which returns the
// entry's cursor once it has been handled.
type journalReader struct {
	cfg        JournalConfig
	cursorPath string // "" keeps the cursor in memory only
	startAtEnd bool
	log        *slog.Logger
	process    func(line []byte) (cursor string)
	once       bool // read to the end and return (no --follow)
	cursor     string
	saved      string
	resumed    bool
	lastSave   time.Time
	stats      *Stats
}

func (j *journalReader) command() string {
	if j.cfg.Command != "" {
		return j.cfg.Command
	}
	return "journalctl"
}

// run reads the journal until ctx is done.
func (j *journalReader) run(ctx context.Context) error {
	if j.cursorPath != "" {
		data, err := os.ReadFile(j.cursorPath)
		switch {
		case err == nil:
			j.cursor = strings.TrimSpace(string(data))
			j.saved, j.resumed = j.cursor, true
			if len(j.cursor) > 4096 || strings.ContainsAny(j.cursor, "\n\x00") {
				return fmt.Errorf("%w: journal cursor file %s is malformed", ErrState, j.cursorPath)
			}
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("%w: %w", ErrState, err)
		}
	}
	backoff := time.Second
	for {
		got, err := j.runOnce(ctx)
		if serr := j.save(true); serr != nil {
			return serr
		}
		if ctx.Err() != nil {
			return nil
		}
		if j.once {
			if err != nil && !got {
				return err
			}
			return nil
		}
		j.stats.add(func(s *Stats) { s.JournalRestarts++ })
		if got {
			backoff = time.Second
		}
		j.log.Warn("journalctl exited; restarting", "err", err, "retry", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxJournalBack)
	}
}

// runOnce runs journalctl until it exits or ctx is done; it reports whether it read an entry.
func (j *journalReader) runOnce(ctx context.Context) (bool, error) {
	args := []string{"--output=json", "--no-pager", "--quiet"}
	if !j.once {
		args = append(args, "--follow")
	}
	if j.cfg.Directory != "" {
		args = append(args, "--directory="+j.cfg.Directory)
	}
	switch {
	case j.cursor != "":
		args = append(args, "--after-cursor="+j.cursor)
	case j.startAtEnd && !j.resumed:
		args = append(args, "--lines=0")
	default:
		args = append(args, "--no-tail")
	}
	cmd := exec.CommandContext(ctx, j.command(), args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = journalWaitDelay
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), "SYSTEMD_COLORS=0", "LC_ALL=C")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return false, fmt.Errorf("journalctl: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("journalctl: %w", err)
	}
	got := false
	br := bufio.NewReaderSize(out, 64<<10)
	var line []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		if len(line)+len(chunk) <= maxJournalLine {
			line = append(line, chunk...)
		} else {
			line = line[:0]
			for isPrefix && err == nil { // skip the rest of an overlong entry
				_, isPrefix, err = br.ReadLine()
			}
			j.stats.add(func(s *Stats) { s.JournalOverlong++ })
			continue
		}
		if err != nil {
			break
		}
		if isPrefix {
			continue
		}
		if len(line) > 0 {
			got = true
			if c := j.process(line); c != "" {
				j.cursor = c
			}
			if err := j.save(false); err != nil {
				j.log.Warn("journal cursor not saved", "err", err)
			}
		}
		line = line[:0]
	}
	werr := cmd.Wait()
	if ctx.Err() != nil {
		return got, nil
	}
	msg := strings.TrimSpace(stderr.String())
	if !got && j.cursor != "" && strings.Contains(strings.ToLower(msg), "cursor") {
		// The entry the cursor names is gone (vacuumed): start over from now.
		j.log.Warn("journal cursor refused; reading from the current end", "stderr", msg)
		j.stats.add(func(s *Stats) { s.JournalGaps++ })
		j.cursor, j.resumed = "", true
		j.startAtEnd = true
	}
	if werr == nil {
		if j.once {
			return got, nil
		}
		return got, fmt.Errorf("journalctl exited: %s", msg)
	}
	return got, fmt.Errorf("journalctl: %w: %s", werr, msg)
}

// save writes the cursor when it changed (at most once a second unless forced).
func (j *journalReader) save(force bool) error {
	if j.cursorPath == "" || j.cursor == j.saved {
		return nil
	}
	if !force && time.Since(j.lastSave) < time.Second {
		return nil
	}
	if err := writeAtomic(j.cursorPath, []byte(j.cursor+"\n")); err != nil {
		return fmt.Errorf("%w: save journal cursor: %w", ErrState, err)
	}
	j.saved, j.lastSave = j.cursor, time.Now()
	return nil
}

// limitedBuffer keeps the last maxJournalStderr bytes written.
type limitedBuffer struct{ b bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > maxJournalStderr {
		p = p[len(p)-maxJournalStderr:]
	}
	if l.b.Len()+len(p) > maxJournalStderr {
		keep := l.b.Bytes()[l.b.Len()+len(p)-maxJournalStderr:]
		rest := append([]byte(nil), keep...)
		l.b.Reset()
		l.b.Write(rest)
	}
	l.b.Write(p)
	return n, nil
}

func (l *limitedBuffer) String() string { return l.b.String() }

var _ io.Writer = (*limitedBuffer)(nil)

// writeAtomic replaces path with data (temporary file, fsync, rename), mode 0600.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cursor-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name)
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
	return os.Rename(name, path)
}
