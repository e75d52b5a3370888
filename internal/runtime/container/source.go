package container

import (
	"context"
	"errors"
	"time"
)

// Source is a container runtime that attribution asks about containers.
type Source interface {
	// Name names the runtime ("containerd", "docker") in logs and errors.
	Name() string
	// Owns says whether the containers a cgroup path names are this
	// runtime's to describe.
	Owns(ref CgroupRef) bool
	// List returns every container the runtime has, with the PID of the
	// running ones.
	List(ctx context.Context) ([]Info, error)
	// Get returns the container a cgroup path names; an error wrapping
	// ErrNotFound when the runtime has none.
	Get(ctx context.Context, ref CgroupRef) (Info, error)
	// Watch subscribes to the runtime's events, calls ready once the
	// subscription is in place (so that a List after it misses nothing),
	// then fn for every change, until ctx ends (it returns nil) or the
	// connection fails (it returns the error; the caller reconnects).
	Watch(ctx context.Context, ready func(), fn func(Change)) error
	// Close releases the connection.
	Close() error
}

// Op is what happened to a container.
type Op int

const (
	// OpUpsert: the container was created, started or changed; Info is
	// complete.
	OpUpsert Op = iota + 1
	// OpExited: its init process exited (Info holds the key).
	OpExited
	// OpDeleted: the runtime forgot it (Info holds the key).
	OpDeleted
)

// Change is one container change a Source reports.
type Change struct {
	Op   Op
	Info Info
	At   time.Time
}

// ErrNotFound says a runtime does not know a container.
var ErrNotFound = errors.New("container: not found")
