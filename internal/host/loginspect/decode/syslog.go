package decode

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Syslog decodes syslog lines as daemons write them to files and send them over the network:
//
//	RFC 5424:          <PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG
//	rsyslog ISO file:  2024-05-01T12:34:56.123456+00:00 HOST TAG[PID]: MSG   (Debian 12's default)
//	RFC 3164 / BSD:    [<PRI>]Mmm dd hh:mm:ss HOST TAG[PID]: MSG              (RSYSLOG_TraditionalFileFormat, RHEL's secure/messages)
//
// The format is recognised per line, so a file written partly before and partly after a
// change of template decodes whole. The message is then handed to the program decoders
// (Classify).
type Syslog struct {
	// Location is the zone of RFC 3164 time stamps, which carry none (time.Local when nil).
	Location *time.Location
	// Now is the reference for the year RFC 3164 time stamps lack (time.Now when nil): a date
	// more than a week ahead of Now is of the previous year.
	Now func() time.Time
}

var _ Decoder = (*Syslog)(nil)

// Name implements Decoder.
func (*Syslog) Name() string { return "syslog" }

// Decode implements Decoder.
func (d *Syslog) Decode(line []byte, path string, r *Record) error {
	r.Source, r.Path = SourceSyslog, path
	s := lineString(line)
	r.Line = s
	err := d.frame(s, r)
	if err != nil {
		r.Message = cut(s, MaxMessage)
		return err
	}
	Classify(r)
	return nil
}

func (d *Syslog) frame(s string, r *Record) error {
	rest := s
	if len(rest) > 0 && rest[0] == '<' {
		pri, after, ok := parsePRI(rest)
		if !ok {
			return fmt.Errorf("%w: bad syslog PRI", ErrFormat)
		}
		r.Facility, r.Severity = pri/8, pri%8
		rest = after
		if len(rest) >= 2 && rest[0] >= '1' && rest[0] <= '9' && rest[1] == ' ' {
			r.Format = "rfc5424"
			return d.rfc5424(rest[2:], r)
		}
	}
	switch {
	case len(rest) >= 19 && isDigit(rest[0]) && rest[4] == '-':
		end := strings.IndexByte(rest, ' ')
		if end < 0 {
			return fmt.Errorf("%w: no host after the time stamp", ErrFormat)
		}
		t, ok := parseISO(rest[:end])
		if !ok {
			return fmt.Errorf("%w: bad time stamp %q", ErrFormat, cut(rest[:end], 40))
		}
		r.Time, r.Format = t, "iso"
		rest = rest[end+1:]
	case len(rest) >= 16 && rest[3] == ' ' && rest[6] == ' ' && rest[9] == ':' && rest[12] == ':':
		t, ok := d.parseBSD(rest[:15])
		if !ok {
			return fmt.Errorf("%w: bad time stamp %q", ErrFormat, rest[:15])
		}
		r.Time, r.Format = t, "rfc3164"
		rest = rest[15:]
		if len(rest) > 0 && rest[0] == ' ' {
			rest = rest[1:]
		}
	default:
		return fmt.Errorf("%w: no syslog time stamp", ErrFormat)
	}
	host, rest, _ := strings.Cut(rest, " ")
	r.Host = cut(host, MaxField)
	parseTag(rest, r)
	return nil
}

// parsePRI reads "<N>" with N in 0..191.
func parsePRI(s string) (int, string, bool) {
	end := strings.IndexByte(s, '>')
	if end < 2 || end > 4 {
		return 0, "", false
	}
	n := 0
	for _, c := range []byte(s[1:end]) {
		if !isDigit(c) {
			return 0, "", false
		}
		n = n*10 + int(c-'0')
	}
	if n > 191 {
		return 0, "", false
	}
	return n, s[end+1:], true
}

// rfc5424 reads TIMESTAMP HOST APP PROCID MSGID SD [MSG] after "<PRI>1 ".
func (d *Syslog) rfc5424(s string, r *Record) error {
	var tok [5]string
	for i := range tok {
		var ok bool
		tok[i], s, ok = strings.Cut(s, " ")
		if !ok && i < 4 {
			return fmt.Errorf("%w: RFC 5424 header has %d of 6 fields", ErrFormat, i+1)
		}
	}
	if tok[0] != "-" {
		t, ok := parseISO(tok[0])
		if !ok {
			return fmt.Errorf("%w: bad RFC 5424 time stamp %q", ErrFormat, cut(tok[0], 40))
		}
		r.Time = t
	}
	r.Host = nilValue(cut(tok[1], MaxField))
	r.Program = nilValue(cut(tok[2], maxTagBytes))
	if pid, err := strconv.Atoi(tok[3]); err == nil && pid >= 0 {
		r.PID = pid
	}
	if tok[4] != "-" {
		r.SetField("msgid", tok[4])
	}
	// STRUCTURED-DATA: "-" or one or more [ID PARAM="VALUE" ...], then the message.
	rest := s
	if strings.HasPrefix(rest, "-") {
		rest = strings.TrimPrefix(rest, "-")
	} else if strings.HasPrefix(rest, "[") {
		var err error
		rest, err = parseSD(rest, r)
		if err != nil {
			return err
		}
	}
	rest = strings.TrimPrefix(rest, " ")
	rest = strings.TrimPrefix(rest, "\ufeff") // BOM: the message is UTF-8
	// rsyslog keeps the space that followed the TAG of a BSD message it received.
	r.Message = cut(strings.TrimLeft(rest, " "), MaxMessage)
	unwrapRepeated(r)
	return nil
}

func nilValue(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

// parseSD reads structured data elements into r.Fields ("ID.PARAM") and returns what follows.
func parseSD(s string, r *Record) (string, error) {
	for len(s) > 0 && s[0] == '[' {
		end := -1
		var id string
		i := 1
		for i < len(s) && s[i] != ' ' && s[i] != ']' {
			i++
		}
		id = s[1:i]
		for i < len(s) {
			switch s[i] {
			case ']':
				end = i
			case ' ':
				i++
				eq := strings.IndexByte(s[i:], '=')
				if eq < 0 || i+eq+1 >= len(s) || s[i+eq+1] != '"' {
					return "", fmt.Errorf("%w: bad RFC 5424 structured data", ErrFormat)
				}
				name := s[i : i+eq]
				j := i + eq + 2
				var v strings.Builder
				for j < len(s) && s[j] != '"' {
					if s[j] == '\\' && j+1 < len(s) && (s[j+1] == '"' || s[j+1] == '\\' || s[j+1] == ']') {
						j++
					}
					if v.Len() < MaxField {
						v.WriteByte(s[j])
					}
					j++
				}
				if j >= len(s) {
					return "", fmt.Errorf("%w: unterminated RFC 5424 parameter", ErrFormat)
				}
				r.SetField(id+"."+name, v.String())
				i = j + 1
				continue
			default:
				return "", fmt.Errorf("%w: bad RFC 5424 structured data", ErrFormat)
			}
			if end >= 0 {
				break
			}
		}
		if end < 0 {
			return "", fmt.Errorf("%w: unterminated RFC 5424 structured data", ErrFormat)
		}
		s = s[end+1:]
	}
	return s, nil
}

// parseTag splits "TAG[PID]: MSG" (or "TAG: MSG"); a line with no tag keeps it all as message.
func parseTag(s string, r *Record) {
	i := 0
	for i < len(s) && i <= maxTagBytes {
		c := s[i]
		if c == '[' || c == ':' || c == ' ' {
			break
		}
		i++
	}
	if i == 0 || i > maxTagBytes || i >= len(s) {
		r.Message = cut(s, MaxMessage)
		return
	}
	prog := s[:i]
	rest := s[i:]
	if rest[0] == '[' {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			r.Message = cut(s, MaxMessage)
			return
		}
		if pid, err := strconv.Atoi(rest[1:end]); err == nil && pid >= 0 {
			r.PID = pid
		}
		rest = rest[end+1:]
	}
	if len(rest) == 0 || rest[0] != ':' {
		r.Message = cut(s, MaxMessage)
		return
	}
	r.Program = prog
	// sudo pads its user name with spaces; RFC 5424 senders drop them: trim for the same
	// message either way.
	r.Message = cut(strings.TrimLeft(rest[1:], " "), MaxMessage)
	unwrapRepeated(r)
}

// unwrapRepeated turns rsyslog's "message repeated N times: [ MSG]" into MSG with Count N.
func unwrapRepeated(r *Record) {
	const p = "message repeated "
	m := r.Message
	if !strings.HasPrefix(m, p) {
		return
	}
	rest := m[len(p):]
	sp := strings.IndexByte(rest, ' ')
	if sp <= 0 {
		return
	}
	n, err := strconv.Atoi(rest[:sp])
	if err != nil || n < 1 {
		return
	}
	rest, ok := strings.CutPrefix(rest[sp:], " times: [")
	if !ok {
		return
	}
	rest = strings.TrimSuffix(strings.TrimLeft(rest, " "), "]")
	r.Message, r.Count = rest, min(n, 1<<20)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parseISO parses RFC 3339 time stamps (YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm)) without
// allocating; other shapes go to time.Parse.
func parseISO(s string) (time.Time, bool) {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	num := func(a, b int) (int, bool) {
		n := 0
		for i := a; i < b; i++ {
			if !isDigit(s[i]) {
				return 0, false
			}
			n = n*10 + int(s[i]-'0')
		}
		return n, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(5, 7)
	d, ok3 := num(8, 10)
	h, ok4 := num(11, 13)
	mi, ok5 := num(14, 16)
	sec, ok6 := num(17, 19)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 {
		return time.Time{}, false
	}
	i := 19
	nsec := 0
	if i < len(s) && s[i] == '.' {
		i++
		digits := 0
		for i < len(s) && isDigit(s[i]) {
			if digits < 9 {
				nsec = nsec*10 + int(s[i]-'0')
				digits++
			}
			i++
		}
		if digits == 0 {
			return time.Time{}, false
		}
		for ; digits < 9; digits++ {
			nsec *= 10
		}
	}
	var loc *time.Location
	switch {
	case i == len(s)-1 && (s[i] == 'Z' || s[i] == 'z'):
		loc = time.UTC
	case i+6 == len(s) && (s[i] == '+' || s[i] == '-') && s[i+3] == ':':
		oh, ok1 := num(i+1, i+3)
		om, ok2 := num(i+4, i+6)
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		off := oh*3600 + om*60
		if s[i] == '-' {
			off = -off
		}
		if off == 0 {
			loc = time.UTC
		} else {
			loc = time.FixedZone("", off)
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, nsec, loc)
	if t.Day() != d { // Feb 30 and the like
		return time.Time{}, false
	}
	return t, true
}

var months = map[string]time.Month{
	"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6,
	"Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12,
}

// parseBSD parses "Mmm dd hh:mm:ss" (day space-padded) in d.Location, inferring the year.
func (d *Syslog) parseBSD(s string) (time.Time, bool) {
	mon, ok := months[s[:3]]
	if !ok {
		return time.Time{}, false
	}
	day := 0
	for _, c := range []byte(s[4:6]) {
		switch {
		case c == ' ':
		case isDigit(c):
			day = day*10 + int(c-'0')
		default:
			return time.Time{}, false
		}
	}
	two := func(i int) (int, bool) {
		if !isDigit(s[i]) || !isDigit(s[i+1]) {
			return 0, false
		}
		return int(s[i]-'0')*10 + int(s[i+1]-'0'), true
	}
	h, ok1 := two(7)
	mi, ok2 := two(10)
	sec, ok3 := two(13)
	if !ok1 || !ok2 || !ok3 || day < 1 || day > 31 || h > 23 || mi > 59 || sec > 60 {
		return time.Time{}, false
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
	t := time.Date(now.Year(), mon, day, h, mi, sec, 0, loc)
	if t.After(now.Add(7 * 24 * time.Hour)) {
		t = t.AddDate(-1, 0, 0)
	}
	return t, true
}

// lineString converts a line to a string once (the record's fields are slices of it), bounded
// by MaxLine.
func lineString(line []byte) string {
	if len(line) > MaxLine {
		line = line[:MaxLine]
	}
	return string(line)
}

// FacilityName is the syslog facility's keyword ("auth", "authpriv", "local0") or "".
func FacilityName(n int) string {
	names := [...]string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
		"authpriv", "ftp", "ntp", "security", "console", "clock", "local0", "local1", "local2", "local3",
		"local4", "local5", "local6", "local7"}
	if n < 0 || n >= len(names) {
		return ""
	}
	return names[n]
}

// SeverityName is the syslog severity's keyword ("err", "info") or "".
func SeverityName(n int) string {
	names := [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}
	if n < 0 || n >= len(names) {
		return ""
	}
	return names[n]
}
