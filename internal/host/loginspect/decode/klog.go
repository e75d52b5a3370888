package decode

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Klog decodes the kubelet's log file (klog's header, /var/log/kubelet.log):
//
//	I1206 08:08:24.486012    1234 kubelet.go:123] "Started kubelet" version="v1.30.0"
//
// Structured messages (a quoted message followed by key=value pairs) have their pairs in
// Fields; the severity letter (I, W, E, F) sets Severity.
type Klog struct {
	// Location and Now infer the zone and year, as for RFC 3164 syslog.
	Location *time.Location
	Now      func() time.Time
}

var _ Decoder = (*Klog)(nil)

// Name implements Decoder.
func (*Klog) Name() string { return "klog" }

// Decode implements Decoder.
func (d *Klog) Decode(line []byte, path string, r *Record) error {
	s := lineString(line)
	r.Source, r.Format, r.Path, r.Line, r.Program = SourceKubelet, "klog", path, s, "kubelet"
	r.Message = s
	if !d.parse(r) {
		r.Message = cut(s, MaxMessage)
		return fmt.Errorf("%w: not a klog line", ErrFormat)
	}
	return nil
}

// klogMessage decodes a klog header inside a syslog or journal message of the kubelet.
func klogMessage(r *Record) {
	var d Klog
	if r.Time.IsZero() {
		d.parse(r)
		return
	}
	t := r.Time
	d.Now = func() time.Time { return t }
	d.Location = t.Location()
	keep := r.Time
	if d.parse(r) {
		r.Time = keep // the syslog or journal time stamp is complete (year, zone)
	}
}

func (d *Klog) parse(r *Record) bool {
	s := r.Message
	// Lmmdd hh:mm:ss.uuuuuu threadid file:line] msg
	if len(s) < 22 || s[5] != ' ' || s[8] != ':' || s[11] != ':' {
		return false
	}
	sev := -1
	switch s[0] {
	case 'I':
		sev = 6
	case 'W':
		sev = 4
	case 'E':
		sev = 3
	case 'F':
		sev = 2
	default:
		return false
	}
	mon, err1 := strconv.Atoi(s[1:3])
	day, err2 := strconv.Atoi(s[3:5])
	if err1 != nil || err2 != nil || mon < 1 || mon > 12 || day < 1 || day > 31 {
		return false
	}
	stamp, rest, ok := strings.Cut(s[6:], " ")
	if !ok {
		return false
	}
	hms, frac, _ := strings.Cut(stamp, ".")
	t, err := time.Parse("15:04:05", hms)
	if err != nil {
		return false
	}
	nsec := 0
	if frac != "" {
		f, err := strconv.Atoi((frac + "000000000")[:9])
		if err != nil {
			return false
		}
		nsec = f
	}
	rest = strings.TrimLeft(rest, " ")
	tid, rest, ok := strings.Cut(rest, " ")
	if !ok {
		return false
	}
	src, msg, ok := strings.Cut(rest, "] ")
	if !ok {
		src, ok = strings.CutSuffix(rest, "]")
		if !ok {
			return false
		}
	}
	loc := d.Location
	if loc == nil {
		loc = time.Local
	}
	now := time.Now()
	if d.Now != nil {
		now = d.Now()
	}
	now = now.In(loc)
	ts := time.Date(now.Year(), time.Month(mon), day, t.Hour(), t.Minute(), t.Second(), nsec, loc)
	if ts.After(now.Add(7 * 24 * time.Hour)) {
		ts = ts.AddDate(-1, 0, 0)
	}
	r.Time, r.Severity = ts, sev
	if n, err := strconv.Atoi(tid); err == nil {
		r.SetField("thread", strconv.Itoa(n))
	}
	r.SetField("source", src)
	// Structured logging: "msg" k=v k2="v 2"
	if strings.HasPrefix(msg, `"`) {
		if m, tail, ok := cutGoQuoted(msg); ok {
			msg = m
			klogPairs(tail, r)
		}
	}
	r.Message = cut(msg, MaxMessage)
	return true
}

// cutGoQuoted reads a Go-quoted string at the start of s.
func cutGoQuoted(s string) (string, string, bool) {
	i := 1
	for i < len(s) {
		switch s[i] {
		case '\\':
			i += 2
			continue
		case '"':
			v, err := strconv.Unquote(s[:i+1])
			if err != nil {
				return "", s, false
			}
			return v, s[i+1:], true
		}
		i++
	}
	return "", s, false
}

func klogPairs(s string, r *Record) {
	for n := 0; n < MaxFields; n++ {
		s = strings.TrimLeft(s, " ")
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || strings.IndexByte(s[:eq], ' ') >= 0 {
			return
		}
		k := s[:eq]
		s = s[eq+1:]
		var v string
		if strings.HasPrefix(s, `"`) {
			var ok bool
			v, s, ok = cutGoQuoted(s)
			if !ok {
				return
			}
		} else {
			end := strings.IndexByte(s, ' ')
			if end < 0 {
				end = len(s)
			}
			v, s = s[:end], s[end:]
		}
		r.SetField(k, v)
	}
}
