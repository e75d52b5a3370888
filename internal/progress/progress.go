// Package progress shows the progress of long work on a terminal: one
// status line on stderr, redrawn a few times a second. It stays silent when
// the output is not a terminal or the user asked for quiet.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// redraw is how often the line is redrawn: often enough to look alive,
// rarely enough to cost nothing.
const redraw = 150 * time.Millisecond

// Bar tracks layers and bytes. A nil *Bar is valid and does nothing, so
// callers need no checks.
type Bar struct {
	w           io.Writer
	label       string
	layersDone  atomic.Int64
	layersTotal atomic.Int64
	bytes       atomic.Int64
	cached      atomic.Int64
	start       time.Time
	stop        chan struct{}
	done        sync.WaitGroup
}

// New returns a Bar drawing on stderr when stderr is a terminal and quiet is
// false, and nil otherwise.
func New(label string, quiet bool) *Bar {
	if quiet || !term.IsTerminal(int(os.Stderr.Fd())) {
		return nil
	}
	return start(os.Stderr, label)
}

func start(w io.Writer, label string) *Bar {
	b := &Bar{w: w, label: label, start: time.Now(), stop: make(chan struct{})}
	b.done.Add(1)
	go b.loop()
	return b
}

func (b *Bar) loop() {
	defer b.done.Done()
	t := time.NewTicker(redraw)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			b.draw()
		case <-b.stop:
			fmt.Fprint(b.w, "\r\033[K")
			return
		}
	}
}

func (b *Bar) draw() {
	line := b.label
	if n := b.layersTotal.Load(); n > 0 {
		line += fmt.Sprintf("  layers %d/%d", b.layersDone.Load(), n)
	}
	if c := b.cached.Load(); c > 0 {
		line += fmt.Sprintf(" (%d cached)", c)
	}
	line += fmt.Sprintf("  %s read  %s", HumanBytes(b.bytes.Load()), time.Since(b.start).Round(100*time.Millisecond))
	fmt.Fprint(b.w, "\r\033[K"+line)
}

// SetLayers sets the total number of layers.
func (b *Bar) SetLayers(n int) {
	if b != nil {
		b.layersTotal.Store(int64(n))
	}
}

// LayerDone counts one finished layer; cached says it came from the cache.
func (b *Bar) LayerDone(cached bool) {
	if b == nil {
		return
	}
	b.layersDone.Add(1)
	if cached {
		b.cached.Add(1)
	}
}

// Add counts n bytes read.
func (b *Bar) Add(n int64) {
	if b != nil {
		b.bytes.Add(n)
	}
}

// Done clears the line and stops redrawing.
func (b *Bar) Done() {
	if b == nil {
		return
	}
	close(b.stop)
	b.done.Wait()
}

// HumanBytes formats n as B, KB, MB or GB (powers of 1024).
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "KMGTPE"[exp])
}
