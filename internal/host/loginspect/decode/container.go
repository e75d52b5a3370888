package decode

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// ErrIncomplete: the line is a part of a longer log line (CRI "P", Docker's 16 KiB split); the
// record is not complete until its last part. Not an error for the caller: skip the record.
var ErrIncomplete = errors.New("decode: partial line")

// maxPending bounds the partial lines kept (one per file and stream).
const maxPending = 1024

// CRI decodes the container log format of the Container Runtime Interface (containerd, CRI-O;
// files under /var/log/pods and /var/log/containers):
//
//	2016-10-06T00:17:09.669794202Z stdout F message
//
// "P" lines are parts of one longer line, joined until its "F" part. The container, pod and
// namespace come from the path (/var/log/pods/NS_POD_UID/CONTAINER/N.log or
// /var/log/containers/POD_NS_CONTAINER-ID.log).
type CRI struct {
	pending map[string]*strings.Builder
	meta    map[string]Container
}

var _ Decoder = (*CRI)(nil)

// Name implements Decoder.
func (*CRI) Name() string { return "cri" }

// Decode implements Decoder.
func (d *CRI) Decode(line []byte, path string, r *Record) error {
	r.Source, r.Format, r.Path, r.Program = SourceContainer, "cri", path, "container"
	s := lineString(line)
	r.Line = s
	r.Container = d.metaOf(path)
	r.Container.Runtime = "cri"
	ts, rest, ok1 := strings.Cut(s, " ")
	stream, rest, ok2 := strings.Cut(rest, " ")
	tag, msg, ok3 := strings.Cut(rest, " ")
	if !ok3 && ok2 && (rest == "F" || rest == "P") { // an empty line: "... stdout F"
		tag, msg, ok3 = rest, "", true
	}
	t, okT := parseISO(ts)
	if !ok1 || !ok2 || !ok3 || !okT || (stream != "stdout" && stream != "stderr") {
		r.Message = cut(s, MaxMessage)
		return fmt.Errorf("%w: not a CRI log line", ErrFormat)
	}
	r.Time = t
	r.Container.Stream = stream
	// The tag is "F" or "P", possibly followed by ":"-separated future flags.
	full := tag == "F" || strings.HasPrefix(tag, "F:")
	key := path + "\x00" + stream
	if !full {
		d.appendPending(key, msg)
		return ErrIncomplete
	}
	if b := d.pending[key]; b != nil {
		d.appendPending(key, msg)
		msg = b.String()
		delete(d.pending, key)
	}
	r.Message = cut(msg, MaxMessage)
	return nil
}

func (d *CRI) appendPending(key, s string) {
	if d.pending == nil {
		d.pending = map[string]*strings.Builder{}
	}
	b := d.pending[key]
	if b == nil {
		if len(d.pending) >= maxPending {
			clear(d.pending)
		}
		b = &strings.Builder{}
		d.pending[key] = b
	}
	if room := MaxLine - b.Len(); room > 0 {
		b.WriteString(cut(s, room))
	}
}

func (d *CRI) metaOf(path string) Container {
	if c, ok := d.meta[path]; ok {
		return c
	}
	c := containerFromPath(path)
	if d.meta == nil || len(d.meta) >= maxPending {
		d.meta = map[string]Container{}
	}
	d.meta[path] = c
	return c
}

// containerFromPath reads the Kubernetes and Docker log path layouts.
func containerFromPath(path string) Container {
	var c Container
	dir, file := filepath.Split(path)
	dir = filepath.Clean(dir)
	switch {
	case strings.Contains(path, "/pods/"):
		// /var/log/pods/NS_POD_UID/CONTAINER/N.log
		c.Name = filepath.Base(dir)
		parts := strings.Split(filepath.Base(filepath.Dir(dir)), "_")
		if len(parts) == 3 {
			c.Namespace, c.Pod, c.PodUID = parts[0], parts[1], parts[2]
		}
	case strings.Contains(path, "/containers/") && strings.HasSuffix(file, "-json.log"):
		// /var/lib/docker/containers/ID/ID-json.log
		c.ID = filepath.Base(dir)
	case strings.Contains(path, "/containers/"):
		// /var/log/containers/POD_NS_CONTAINER-ID.log
		parts := strings.Split(strings.TrimSuffix(file, ".log"), "_")
		if len(parts) == 3 {
			c.Pod, c.Namespace = parts[0], parts[1]
			if i := strings.LastIndexByte(parts[2], '-'); i > 0 {
				c.Name, c.ID = parts[2][:i], parts[2][i+1:]
			}
		}
	}
	for _, p := range []*string{&c.Name, &c.Namespace, &c.Pod, &c.PodUID, &c.ID} {
		*p = cut(*p, 256)
	}
	return c
}

// Docker decodes Docker's json-file log driver (/var/lib/docker/containers/ID/ID-json.log):
//
//	{"log":"message\n","stream":"stdout","time":"2024-05-01T12:00:00.000000000Z"}
//
// A log value without its trailing newline is a part (Docker splits lines at 16 KiB), joined
// with the next parts.
type Docker struct {
	cri CRI // the partial-line buffer and path metadata
}

var _ Decoder = (*Docker)(nil)

// Name implements Decoder.
func (*Docker) Name() string { return "docker" }

type dockerLine struct {
	Log    string `json:"log"`
	Stream string `json:"stream"`
	Time   string `json:"time"`
}

// Decode implements Decoder.
func (d *Docker) Decode(line []byte, path string, r *Record) error {
	r.Source, r.Format, r.Path, r.Program = SourceContainer, "docker", path, "container"
	r.Line = lineString(line)
	r.Container = d.cri.metaOf(path)
	r.Container.Runtime = "docker"
	var l dockerLine
	if len(line) > MaxLine {
		r.Message = cut(r.Line, MaxMessage)
		return fmt.Errorf("%w: Docker log line longer than %d bytes", ErrFormat, MaxLine)
	}
	if err := json.Unmarshal(line, &l); err != nil {
		r.Message = cut(r.Line, MaxMessage)
		return fmt.Errorf("%w: Docker json-file: %v", ErrFormat, err)
	}
	if t, ok := parseISO(l.Time); ok {
		r.Time = t
	} else if t, err := time.Parse(time.RFC3339Nano, l.Time); err == nil {
		r.Time = t
	}
	r.Container.Stream = cut(l.Stream, 16)
	key := path + "\x00" + l.Stream
	if !strings.HasSuffix(l.Log, "\n") {
		d.cri.appendPending(key, l.Log)
		return ErrIncomplete
	}
	msg := strings.TrimSuffix(strings.TrimSuffix(l.Log, "\n"), "\r")
	if b := d.cri.pending[key]; b != nil {
		d.cri.appendPending(key, msg)
		msg = b.String()
		delete(d.cri.pending, key)
	}
	r.Message = cut(msg, MaxMessage)
	return nil
}
