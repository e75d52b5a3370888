// Package spool is the agent's bounded on-disk queue of events for the
// server: records appended to segment files, read back in order, and
// removed once the server acknowledged them, so that events survive a
// server outage and an agent restart and are delivered at least once.
//
// Layout: a directory of segment files named by a 20-digit sequence number
// (00000000000000000001.seg ...) and an "ack" file naming the position
// (segment, offset) up to which records were delivered. A record is
//
//	magic "MSP1" | length (uint32 LE) | CRC-32C of the payload (uint32 LE) | payload
//
// Appends go to the newest (head) segment, which is closed at the segment
// size. Durability (Options.Fsync): FsyncAlways syncs every append before
// it returns; FsyncBatch syncs at most every FsyncInterval and when a
// segment is closed (a power loss loses at most that interval; an agent
// crash loses nothing: the data is in the page cache); FsyncNever leaves it
// to the kernel.
//
// Recovery: at Open a torn record at the end of the head segment (a crash
// mid-write) is cut off; a record that fails its checks anywhere else (bad
// magic, length or CRC: a corrupt disk block) is skipped by scanning for
// the next valid record, and the bytes skipped are counted. An unreadable
// ack file restarts delivery from the oldest segment (the server drops the
// duplicates by event ID).
//
// Bound: when the segments exceed MaxBytes the oldest segment is deleted,
// delivered or not, and its undelivered records are counted as dropped.
package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fsync policies.
const (
	FsyncAlways = "always"
	FsyncBatch  = "batch"
	FsyncNever  = "never"
)

const (
	magic      = "MSP1"
	headerSize = 12
	// MaxRecord bounds one record: an event envelope is at most about 1 MiB
	// (256 arguments of 4 KiB); anything longer is a corrupt length.
	MaxRecord = 4 << 20
	segSuffix = ".seg"
	ackFile   = "ack"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Errors.
var (
	ErrClosed   = errors.New("spool: closed")
	ErrTooLarge = errors.New("spool: record too large")
)

// Options configure Open.
type Options struct {
	Dir           string
	MaxBytes      int64
	SegmentBytes  int64
	Fsync         string
	FsyncInterval time.Duration
	Logger        *slog.Logger
}

// Stats are the spool's counters.
type Stats struct {
	Segments int   `json:"segments"`
	Bytes    int64 `json:"bytes"`
	// Pending records are appended and not yet acknowledged.
	Pending  int64  `json:"pending"`
	Appended uint64 `json:"appended"`
	Acked    uint64 `json:"acked"`
	// Dropped records were deleted at the size cap before delivery.
	Dropped uint64 `json:"dropped"`
	// CorruptBytes were skipped while reading (failed checks); TornBytes
	// cut off the head segment's end at open.
	CorruptBytes uint64 `json:"corruptBytes"`
	TornBytes    uint64 `json:"tornBytes"`
	Syncs        uint64 `json:"syncs"`
}

type segment struct {
	seq     uint64
	size    int64
	records int64
}

// Spool is an open spool directory. Its methods are safe for concurrent
// use (one appender and one reader is the intended use).
type Spool struct {
	o Options

	mu     sync.Mutex
	segs   []*segment // oldest first; the last is the head
	head   *os.File
	dirty  bool
	closed bool
	// ack: the next record to deliver is at (ackSeq, ackOff); ackRecs
	// records of segment ackSeq were delivered.
	ackSeq  uint64
	ackOff  int64
	ackRecs int64
	stats   Stats
	notify  chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

// Open opens (creating it) the spool directory and recovers its state.
func Open(o Options) (*Spool, error) {
	if o.Dir == "" {
		return nil, errors.New("spool: no directory")
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = 4 << 20
	}
	if o.MaxBytes < o.SegmentBytes {
		o.MaxBytes = o.SegmentBytes
	}
	if o.FsyncInterval <= 0 {
		o.FsyncInterval = time.Second
	}
	switch o.Fsync {
	case "":
		o.Fsync = FsyncBatch
	case FsyncAlways, FsyncBatch, FsyncNever:
	default:
		return nil, fmt.Errorf("spool: fsync policy %q is not always, batch or never", o.Fsync)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{o: o, notify: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if err := s.recover(); err != nil {
		return nil, err
	}
	go s.syncLoop()
	return s, nil
}

// recover lists the segments, cuts a torn head, counts records and reads
// the ack position.
func (s *Spool) recover() error {
	ents, err := os.ReadDir(s.o.Dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(name, segSuffix) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, segSuffix), 10, 64)
		if err != nil || seq == 0 {
			continue // not ours
		}
		s.segs = append(s.segs, &segment{seq: seq})
	}
	sort.Slice(s.segs, func(i, j int) bool { return s.segs[i].seq < s.segs[j].seq })
	for i, g := range s.segs {
		data, err := os.ReadFile(s.path(g.seq))
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		sc := Scan(data)
		g.records = int64(sc.Records)
		g.size = int64(len(data))
		s.stats.CorruptBytes += uint64(sc.Skipped)
		if i == len(s.segs)-1 && sc.Tail > 0 {
			// A torn write at the end of the head: cut it off.
			g.size = int64(len(data) - sc.Tail)
			if err := os.Truncate(s.path(g.seq), g.size); err != nil {
				return fmt.Errorf("spool: truncate torn segment: %w", err)
			}
			s.stats.TornBytes += uint64(sc.Tail)
			s.o.Logger.Warn("spool: cut a torn record off the last segment", "segment", g.seq, "bytes", sc.Tail)
		} else if sc.Tail > 0 {
			s.stats.CorruptBytes += uint64(sc.Tail)
		}
	}
	s.readAck()
	// Segments before the ack position were delivered (a crash came
	// between the ack and their removal).
	for len(s.segs) > 1 && s.segs[0].seq < s.ackSeq {
		if err := os.Remove(s.path(s.segs[0].seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("spool: %w", err)
		}
		s.segs = s.segs[1:]
	}
	for _, g := range s.segs {
		s.stats.Bytes += g.size
		s.stats.Pending += g.records
	}
	s.stats.Pending -= s.ackRecs
	s.stats.Segments = len(s.segs)
	if len(s.segs) > 0 && s.segs[len(s.segs)-1].size < s.o.SegmentBytes {
		f, err := os.OpenFile(s.path(s.segs[len(s.segs)-1].seq), os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		s.head = f
	}
	return nil
}

// readAck reads the ack file; anything wrong restarts from the oldest
// segment.
func (s *Spool) readAck() {
	s.ackSeq, s.ackOff, s.ackRecs = 0, 0, 0
	if len(s.segs) > 0 {
		s.ackSeq = s.segs[0].seq
	}
	b, err := os.ReadFile(filepath.Join(s.o.Dir, ackFile))
	if err != nil {
		return
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		s.o.Logger.Warn("spool: unreadable ack file: delivering from the oldest segment")
		return
	}
	seq, err1 := strconv.ParseUint(f[0], 10, 64)
	off, err2 := strconv.ParseInt(f[1], 10, 64)
	recs, err3 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || off < 0 || recs < 0 {
		s.o.Logger.Warn("spool: unreadable ack file: delivering from the oldest segment")
		return
	}
	for _, g := range s.segs {
		if g.seq == seq && off <= g.size && recs <= g.records {
			s.ackSeq, s.ackOff, s.ackRecs = seq, off, recs
			return
		}
		if g.seq > seq { // the acked segment was deleted: start at the next
			s.ackSeq = g.seq
			return
		}
	}
	if len(s.segs) > 0 && seq > s.segs[len(s.segs)-1].seq {
		s.o.Logger.Warn("spool: ack file ahead of the segments: delivering from the oldest segment")
	}
}

func (s *Spool) path(seq uint64) string {
	return filepath.Join(s.o.Dir, fmt.Sprintf("%020d%s", seq, segSuffix))
}

// Append adds records (each one payload), in order.
func (s *Spool) Append(payloads ...[]byte) error {
	var buf bytes.Buffer
	for _, p := range payloads {
		if len(p) > MaxRecord {
			return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(p))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	for len(payloads) > 0 {
		if s.head == nil {
			if err := s.newHead(); err != nil {
				return err
			}
		}
		g := s.segs[len(s.segs)-1]
		buf.Reset()
		n := 0
		for n < len(payloads) && (n == 0 || g.size+int64(buf.Len()+headerSize+len(payloads[n])) <= s.o.SegmentBytes) {
			writeRecord(&buf, payloads[n])
			n++
		}
		if _, err := s.head.Write(buf.Bytes()); err != nil {
			return fmt.Errorf("spool: append: %w", err)
		}
		g.size += int64(buf.Len())
		g.records += int64(n)
		s.stats.Bytes += int64(buf.Len())
		s.stats.Pending += int64(n)
		s.stats.Appended += uint64(n)
		s.dirty = true
		payloads = payloads[n:]
		if g.size >= s.o.SegmentBytes {
			if err := s.closeHead(); err != nil {
				return err
			}
		}
	}
	if s.o.Fsync == FsyncAlways && s.head != nil {
		if err := s.head.Sync(); err != nil {
			return fmt.Errorf("spool: fsync: %w", err)
		}
		s.stats.Syncs++
		s.dirty = false
	}
	s.enforceCap()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return nil
}

func writeRecord(buf *bytes.Buffer, p []byte) {
	var h [headerSize]byte
	copy(h[:4], magic)
	binary.LittleEndian.PutUint32(h[4:8], uint32(len(p)))
	binary.LittleEndian.PutUint32(h[8:12], crc32.Checksum(p, crcTable))
	buf.Write(h[:])
	buf.Write(p)
}

func (s *Spool) newHead() error {
	seq := uint64(1)
	if n := len(s.segs); n > 0 {
		seq = s.segs[n-1].seq + 1
	}
	f, err := os.OpenFile(s.path(seq), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("spool: new segment: %w", err)
	}
	s.head = f
	s.segs = append(s.segs, &segment{seq: seq})
	if len(s.segs) == 1 {
		s.ackSeq, s.ackOff, s.ackRecs = seq, 0, 0
	}
	s.stats.Segments = len(s.segs)
	return nil
}

func (s *Spool) closeHead() error {
	if s.head == nil {
		return nil
	}
	var err error
	if s.o.Fsync != FsyncNever {
		err = s.head.Sync()
		s.stats.Syncs++
	}
	if cerr := s.head.Close(); err == nil {
		err = cerr
	}
	s.head = nil
	s.dirty = false
	if err != nil {
		return fmt.Errorf("spool: close segment: %w", err)
	}
	return nil
}

// enforceCap deletes the oldest segments while the spool is over
// MaxBytes (never the head being written).
func (s *Spool) enforceCap() {
	for s.stats.Bytes > s.o.MaxBytes && len(s.segs) > 1 {
		g := s.segs[0]
		lost := g.records
		if g.seq == s.ackSeq {
			lost -= s.ackRecs
		} else if g.seq < s.ackSeq {
			lost = 0
		}
		if err := os.Remove(s.path(g.seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.o.Logger.Error("spool: remove segment at the size cap", "error", err)
			return
		}
		s.segs = s.segs[1:]
		s.stats.Bytes -= g.size
		s.stats.Pending -= lost
		s.stats.Dropped += uint64(lost)
		s.stats.Segments = len(s.segs)
		if s.ackSeq <= g.seq {
			s.ackSeq, s.ackOff, s.ackRecs = s.segs[0].seq, 0, 0
		}
		s.o.Logger.Warn("spool: over its size cap: dropped the oldest segment", "records", lost)
	}
}

// Batch is a run of records read from the ack position.
type Batch struct {
	Records [][]byte
	endSeq  uint64
	endOff  int64
	endRecs int64 // records of segment endSeq delivered once this batch is acked
}

// Read returns up to max records (and about maxBytes) from the ack
// position, without consuming them: Ack does. An empty batch means
// nothing is pending; wait on Notify.
func (s *Spool) Read(max int, maxBytes int) (Batch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Batch{}, ErrClosed
	}
	b := Batch{endSeq: s.ackSeq, endOff: s.ackOff, endRecs: s.ackRecs}
	size := 0
	for i := 0; i < len(s.segs) && len(b.Records) < max && size < maxBytes; i++ {
		g := s.segs[i]
		if g.seq < b.endSeq {
			continue
		}
		off := int64(0)
		recs := int64(0)
		if g.seq == b.endSeq {
			off, recs = b.endOff, b.endRecs
		}
		if off >= g.size {
			if i < len(s.segs)-1 {
				b.endSeq, b.endOff, b.endRecs = s.segs[i+1].seq, 0, 0
			}
			continue
		}
		f, err := os.Open(s.path(g.seq))
		if err != nil {
			return b, fmt.Errorf("spool: %w", err)
		}
		data := make([]byte, g.size-off)
		_, err = io.ReadFull(io.NewSectionReader(f, off, g.size-off), data)
		f.Close()
		if err != nil {
			return b, fmt.Errorf("spool: read segment %d: %w", g.seq, err)
		}
		pos := 0
		budget := scanBudget(len(data))
		for pos < len(data) && len(b.Records) < max && size < maxBytes {
			p, n, skipped := next(data[pos:], &budget)
			s.stats.CorruptBytes += uint64(skipped)
			if n == 0 {
				// Nothing valid left in this segment (counted as corrupt).
				s.stats.CorruptBytes += uint64(len(data) - pos - skipped)
				pos = len(data)
				break
			}
			b.Records = append(b.Records, p)
			size += len(p)
			pos += n
			recs++
		}
		b.endSeq, b.endOff, b.endRecs = g.seq, off+int64(pos), recs
		if off+int64(pos) >= g.size && i < len(s.segs)-1 {
			b.endSeq, b.endOff, b.endRecs = s.segs[i+1].seq, 0, 0
		}
	}
	return b, nil
}

// Ack marks a batch delivered: the position moves past it and fully
// delivered segments are deleted.
func (s *Spool) Ack(b Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if b.endSeq < s.ackSeq || (b.endSeq == s.ackSeq && b.endOff <= s.ackOff) {
		// Nothing new (an empty batch), or the size cap moved the position
		// past the batch meanwhile.
		return nil
	}
	n := int64(len(b.Records))
	s.ackSeq, s.ackOff, s.ackRecs = b.endSeq, b.endOff, b.endRecs
	s.stats.Acked += uint64(n)
	s.stats.Pending -= n
	if s.stats.Pending < 0 {
		s.stats.Pending = 0
	}
	for len(s.segs) > 0 && s.segs[0].seq < s.ackSeq {
		g := s.segs[0]
		if err := os.Remove(s.path(g.seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("spool: remove delivered segment: %w", err)
		}
		s.segs = s.segs[1:]
		s.stats.Bytes -= g.size
	}
	s.stats.Segments = len(s.segs)
	return s.writeAck()
}

func (s *Spool) writeAck() error {
	tmp := filepath.Join(s.o.Dir, ackFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool: ack: %w", err)
	}
	_, err = fmt.Fprintf(f, "%d %d %d\n", s.ackSeq, s.ackOff, s.ackRecs)
	if err == nil && s.o.Fsync == FsyncAlways {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.o.Dir, ackFile))
	}
	if err != nil {
		return fmt.Errorf("spool: ack: %w", err)
	}
	return nil
}

// Notify is signalled after appends (level-triggered, buffered by one).
func (s *Spool) Notify() <-chan struct{} { return s.notify }

// Stats returns the counters.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Sync flushes the head segment to disk.
func (s *Spool) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncLocked()
}

func (s *Spool) syncLocked() error {
	if s.head == nil || !s.dirty {
		return nil
	}
	s.dirty = false
	s.stats.Syncs++
	if err := s.head.Sync(); err != nil {
		return fmt.Errorf("spool: fsync: %w", err)
	}
	return nil
}

func (s *Spool) syncLoop() {
	defer close(s.done)
	if s.o.Fsync != FsyncBatch {
		<-s.stop
		return
	}
	t := time.NewTicker(s.o.FsyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			if err := s.syncLocked(); err != nil {
				s.o.Logger.Error("spool: fsync", "error", err)
			}
			s.mu.Unlock()
		}
	}
}

// Close syncs (unless FsyncNever) and closes the spool.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var err error
	if s.o.Fsync != FsyncNever {
		err = s.syncLocked()
	}
	if s.head != nil {
		if cerr := s.head.Close(); err == nil {
			err = cerr
		}
		s.head = nil
	}
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	return err
}

// ScanResult is what Scan found in a segment's bytes.
type ScanResult struct {
	Records int
	// Skipped bytes failed the checks and were passed over to reach a
	// later valid record.
	Skipped int
	// Tail bytes at the end hold no valid record (a torn write, or
	// corruption with nothing valid after it).
	Tail int
}

// Scan checks a segment's bytes record by record.
func Scan(data []byte) ScanResult {
	var r ScanResult
	pos := 0
	budget := scanBudget(len(data))
	for pos < len(data) {
		_, n, skipped := next(data[pos:], &budget)
		if n == 0 {
			r.Tail = len(data) - pos
			break
		}
		r.Records++
		r.Skipped += skipped
		pos += n
	}
	return r
}

// next returns the first valid record of data: its payload, the bytes
// consumed through its end (0: none valid) and how many bytes before it
// were skipped. A valid record has the magic, a length that fits, and a
// matching CRC. Checking a candidate's CRC costs its length: budget (shared
// by one scan) bounds the bytes checked for candidates that fail, so a
// hostile segment full of fake headers cannot make a scan quadratic; when
// it is spent the rest counts as corrupt.
func next(data []byte, budget *int) (payload []byte, n, skipped int) {
	for off := 0; off+headerSize <= len(data); {
		i := bytes.Index(data[off:], []byte(magic))
		if i < 0 {
			return nil, 0, 0
		}
		off += i
		if off+headerSize > len(data) {
			return nil, 0, 0
		}
		l := int(binary.LittleEndian.Uint32(data[off+4 : off+8]))
		if end := off + headerSize + l; l <= MaxRecord && end <= len(data) {
			if *budget < 0 {
				return nil, 0, 0
			}
			p := data[off+headerSize : end]
			if crc32.Checksum(p, crcTable) == binary.LittleEndian.Uint32(data[off+8:off+12]) {
				return p, end, off
			}
			*budget -= l
		}
		off++ // not a record here: look for the next magic
	}
	return nil, 0, 0
}

// scanBudget is the CRC work allowed for failed candidates in n bytes.
func scanBudget(n int) int { return 4*n + 1<<20 }
