package decode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Journal decodes `journalctl --output=json` lines (one journal entry per line, every field a
// string; a field journald stores as binary is an array of byte values, a field given twice an
// array of strings, one too large for the export null). The message is then classified like a
// syslog message, by SYSLOG_IDENTIFIER (or _COMM).
type Journal struct {
	// Cursor is the __CURSOR of the last entry decoded: the journal source saves it to resume.
	Cursor string
}

var _ Decoder = (*Journal)(nil)

// Name implements Decoder.
func (*Journal) Name() string { return "journal" }

// jval is a journal field value: a string, an array of byte values (binary data), an array of
// strings (a repeated field: the first is kept) or null.
type jval string

func (v *jval) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		*v = ""
		return nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = jval(s)
		return nil
	case b[0] == '[':
		var raw []json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			return err
		}
		if len(raw) == 0 {
			*v = ""
			return nil
		}
		if raw[0][0] == '"' {
			var s string
			if err := json.Unmarshal(raw[0], &s); err != nil {
				return err
			}
			*v = jval(s)
			return nil
		}
		var bs []byte
		for _, r := range raw {
			n, err := strconv.Atoi(string(r))
			if err != nil || n < 0 || n > 255 {
				return fmt.Errorf("journal field: bad byte %s", r)
			}
			bs = append(bs, byte(n))
		}
		*v = jval(bytes.ToValidUTF8(bs, []byte("\uFFFD")))
		return nil
	}
	return fmt.Errorf("journal field: unexpected %.20s", b)
}

type journalEntry struct {
	Cursor      jval `json:"__CURSOR"`
	Realtime    jval `json:"__REALTIME_TIMESTAMP"`
	Message     jval `json:"MESSAGE"`
	Ident       jval `json:"SYSLOG_IDENTIFIER"`
	Comm        jval `json:"_COMM"`
	PID         jval `json:"_PID"`
	SyslogPID   jval `json:"SYSLOG_PID"`
	Hostname    jval `json:"_HOSTNAME"`
	Priority    jval `json:"PRIORITY"`
	Facility    jval `json:"SYSLOG_FACILITY"`
	SystemdUnit jval `json:"_SYSTEMD_UNIT"`
	Unit        jval `json:"UNIT"`
	UserUnit    jval `json:"USER_UNIT"`
	Transport   jval `json:"_TRANSPORT"`
	Exe         jval `json:"_EXE"`
	UID         jval `json:"_UID"`
}

// Decode implements Decoder.
func (d *Journal) Decode(line []byte, path string, r *Record) error {
	r.Source, r.Format, r.Path = SourceJournal, "journal", path
	if path == "" {
		r.Path = "journal"
	}
	if len(line) > MaxLine {
		// A cut JSON object does not parse: say so rather than guess.
		r.Line = lineString(line)
		r.Message = cut(r.Line, MaxMessage)
		return fmt.Errorf("%w: journal entry longer than %d bytes", ErrFormat, MaxLine)
	}
	var e journalEntry
	if err := json.Unmarshal(line, &e); err != nil {
		r.Line = lineString(line)
		r.Message = cut(r.Line, MaxMessage)
		return fmt.Errorf("%w: journal JSON: %v", ErrFormat, err)
	}
	d.Cursor = string(e.Cursor)
	if us, err := strconv.ParseInt(string(e.Realtime), 10, 64); err == nil && us > 0 {
		r.Time = time.UnixMicro(us).UTC()
	}
	r.Message = cut(string(e.Message), MaxMessage)
	r.Line = r.Message
	r.Program = cut(string(e.Ident), maxTagBytes)
	if r.Program == "" {
		r.Program = cut(string(e.Comm), maxTagBytes)
	}
	if e.Transport == "audit" && r.Program == "" {
		r.Program = "audit"
	}
	for _, p := range []jval{e.SyslogPID, e.PID} {
		if n, err := strconv.Atoi(string(p)); err == nil && n >= 0 {
			r.PID = n
			break
		}
	}
	r.Host = cut(string(e.Hostname), MaxField)
	if n, err := strconv.Atoi(string(e.Priority)); err == nil && n >= 0 && n <= 7 {
		r.Severity = n
	}
	if n, err := strconv.Atoi(string(e.Facility)); err == nil && n >= 0 && n <= 23 {
		r.Facility = n
	}
	// systemd's own messages about a unit carry UNIT= (USER_UNIT= for user managers); other
	// programs' lines carry the unit they run in.
	switch {
	case e.Unit != "":
		r.Unit = cut(string(e.Unit), MaxField)
	case e.UserUnit != "":
		r.Unit = cut(string(e.UserUnit), MaxField)
	default:
		r.Unit = cut(string(e.SystemdUnit), MaxField)
	}
	if e.Exe != "" {
		r.SetField("exe", string(e.Exe))
	}
	if e.Transport != "" {
		r.SetField("transport", string(e.Transport))
	}
	if n, err := strconv.Atoi(string(e.UID)); err == nil {
		r.SetField("uid", strconv.Itoa(n))
	}
	if !utf8.ValidString(r.Message) {
		r.Message = string(bytes.ToValidUTF8([]byte(r.Message), []byte("\uFFFD")))
	}
	Classify(r)
	return nil
}
