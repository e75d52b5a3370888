package event

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"mamori/internal/model"
)

// The model conversions give the evidence parts of the one event envelope
// (model.Event) from a runtime event. Values the store cannot hold as they
// are (invalid UTF-8, NUL, longer than model.MaxEventTextLen) are escaped
// and cut with Sanitize; others are kept byte for byte.

// ModelProcess is the process as model.Event.Process.
func (e *Event) ModelProcess() *model.Process {
	p := &e.Process
	mp := &model.Process{
		PID: p.PID, PPID: p.PPID, UID: p.UID, GID: p.GID,
		Exe: fit(p.Exe), Comm: fit(p.Comm), Cwd: fit(p.Cwd),
	}
	if n := len(p.Args); n > 0 {
		n = min(n, model.MaxEventArgs)
		mp.Args = make([]string, n)
		for i := range n {
			mp.Args[i] = fit(p.Args[i])
		}
	}
	if p.ParentExe != "" {
		mp.Ancestors = []string{fit(p.ParentExe)}
	}
	return mp
}

// ModelContainer is the container as model.Event.Container, nil on the host.
func (e *Event) ModelContainer() *model.ContainerRef {
	c := &e.Container
	if c.IsHost() {
		return nil
	}
	ref := &model.ContainerRef{ID: fit(c.ID), Name: fit(c.Name), Image: fit(c.Image), ImageDigest: fit(c.ImageDigest), Runtime: fit(c.Runtime)}
	if len(c.Labels) > 0 {
		ref.Labels = make(map[string]string, min(len(c.Labels), model.MaxEventDetails))
		for k, v := range c.Labels {
			if len(ref.Labels) == model.MaxEventDetails {
				break
			}
			ref.Labels[fit(k)] = fit(v)
		}
	}
	return ref
}

// ModelFile is the file as model.Event.File: the file of a file kind, the
// executable of an exec, the module of a module load; nil otherwise.
func (e *Event) ModelFile() *model.FileRef {
	switch {
	case e.Kind.IsFile():
		f := &model.FileRef{Path: fit(e.File.Path), NewPath: fit(e.File.NewPath)}
		if e.Kind == KindChmod || e.File.Mode != 0 {
			f.Mode = fmt.Sprintf("%04o", e.File.Mode)
		}
		return f
	case e.Kind == KindExec:
		return &model.FileRef{Path: fit(e.Process.Exe)}
	case e.Kind == KindModuleLoad && e.Module.Name != "":
		return &model.FileRef{Path: fit(e.Module.Name)}
	}
	return nil
}

// ModelNetwork is the socket as model.Event.Network: the address of a
// network kind, the domain of a raw or packet socket; nil otherwise.
func (e *Event) ModelNetwork() *model.NetworkRef {
	switch {
	case e.Kind.IsNetwork():
		n := &e.Net
		return &model.NetworkRef{Protocol: fit(n.Protocol), SrcAddr: fit(n.SrcAddr), SrcPort: port(n.SrcPort),
			DstAddr: fit(n.DstAddr), DstPort: port(n.DstPort)}
	case e.Kind == KindSocket:
		proto := "raw"
		if e.Socket.Domain == AFPacket {
			proto = "packet"
		}
		return &model.NetworkRef{Protocol: proto}
	}
	return nil
}

func port(p int) int {
	if p < 0 || p > 65535 {
		return 0
	}
	return p
}

// fit keeps s when the store can hold it, else escapes and cuts it.
func fit(s string) string {
	if len(s) <= model.MaxEventTextLen && utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	// Sanitize expands a byte to at most 6 (\u202e); 600 input bytes stay
	// well under MaxEventTextLen.
	return Sanitize(s, 600)
}
