package agent

import "mamori/internal/runtime/event"

// fileID names a file on one boot: its device (stat(2)'s st_dev) and inode.
// Each container's root overlay is a device of its own, so one container's
// file is never taken for another's.
type fileID struct {
	dev, ino uint64
}

// writerTable remembers which executable last opened a file for writing
// (write events), so that the exec of that file can name its writer
// (proc.exe_writer: dropped payloads, download-and-execute). Bounded:
// the least recently written file is forgotten first (counted).
type writerTable struct {
	files *lru[fileID, string]
}

// DefaultMaxWriters bounds the writer table: the files written in watched
// directories that are still candidates for execution.
const DefaultMaxWriters = 16384

func newWriterTable(max int) *writerTable {
	if max <= 0 {
		max = DefaultMaxWriters
	}
	return &writerTable{files: newLRU[fileID, string](max)}
}

// observe records the writer of a write event's file, and forgets a file
// that was removed.
func (w *writerTable) observe(e *event.Event) {
	switch e.Kind {
	case event.KindWrite:
		if e.File.Inode == 0 || e.Failed() {
			return
		}
		exe := e.Process.Exe
		if exe == "" {
			exe = e.Process.Comm
		}
		w.files.put(fileID{e.File.Dev, e.File.Inode}, exe)
	}
}

// writer returns the executable that wrote the file an exec event runs.
func (w *writerTable) writer(e *event.Event) string {
	if e.Kind != event.KindExec || e.File.Inode == 0 {
		return ""
	}
	exe, _ := w.files.get(fileID{e.File.Dev, e.File.Inode})
	return exe
}
