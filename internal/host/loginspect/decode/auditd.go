package decode

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Auditd decodes the Linux audit daemon's log (/var/log/audit/audit.log), raw or enriched:
//
//	type=USER_AUTH msg=audit(1700000000.123:456): pid=1234 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:authentication grantors=? acct="root" exe="/usr/sbin/sshd" hostname=203.0.113.9 addr=203.0.113.9 terminal=ssh res=failed'
//
// Type becomes "auditd_" + the record type in lower case; acct, addr, exe, terminal, uid and
// res fill the typed fields, every other pair goes to Fields.
type Auditd struct{}

var _ Decoder = (*Auditd)(nil)

// Name implements Decoder.
func (*Auditd) Name() string { return "auditd" }

// Decode implements Decoder.
func (*Auditd) Decode(line []byte, path string, r *Record) error {
	s := lineString(line)
	r.Source, r.Format, r.Path, r.Line, r.Program = SourceAuditd, "auditd", path, s, "auditd"
	if !parseAuditRecord(s, r) {
		r.Message = cut(s, MaxMessage)
		return fmt.Errorf("%w: not an audit record", ErrFormat)
	}
	return nil
}

// auditTypes names the numeric record types the kernel writes to syslog (linux/audit.h).
var auditTypes = map[string]string{
	"1100": "USER_AUTH", "1101": "USER_ACCT", "1102": "USER_MGMT", "1103": "CRED_ACQ", "1104": "CRED_DISP",
	"1105": "USER_START", "1106": "USER_END", "1107": "USER_AVC", "1108": "USER_CHAUTHTOK", "1109": "USER_ERR",
	"1110": "CRED_REFR", "1111": "USYS_CONFIG", "1112": "USER_LOGIN", "1113": "USER_LOGOUT", "1114": "ADD_USER",
	"1115": "DEL_USER", "1116": "ADD_GROUP", "1117": "DEL_GROUP", "1119": "CHGRP_ID", "1123": "USER_CMD",
	"1125": "CHUSER_ID", "1126": "GRP_AUTH", "1127": "SYSTEM_BOOT", "1128": "SYSTEM_SHUTDOWN",
	"1130": "SERVICE_START", "1131": "SERVICE_STOP", "1132": "GRP_MGMT", "1133": "GRP_CHAUTHTOK",
	"1135": "ACCT_LOCK", "1136": "ACCT_UNLOCK", "1138": "SOFTWARE_UPDATE",
	"1300": "SYSCALL", "1302": "PATH", "1305": "CONFIG_CHANGE", "1306": "SOCKADDR", "1307": "CWD",
	"1309": "EXECVE", "1320": "EOE", "1327": "PROCTITLE", "1400": "AVC",
}

// parseAuditRecord reads "[type=T ][msg=]audit(SECS.MS:SERIAL): k=v ..." or, from the journal's
// audit transport, "T k=v ...". It reports whether s was an audit record.
func parseAuditRecord(s string, r *Record) bool {
	typ := ""
	if rest, ok := strings.CutPrefix(s, "type="); ok {
		typ, s, _ = strings.Cut(rest, " ")
	} else if sp := strings.IndexByte(s, ' '); sp > 0 && isUpperWord(s[:sp]) {
		typ, s = s[:sp], s[sp+1:]
	}
	if typ == "" {
		return false
	}
	if name, ok := auditTypes[typ]; ok {
		typ = name
	}
	if len(typ) > 32 || !isUpperWord(typ) && !isDigits(typ) {
		return false
	}
	s = strings.TrimPrefix(s, "msg=")
	if rest, ok := strings.CutPrefix(s, "audit("); ok {
		stamp, after, ok := strings.Cut(rest, "): ")
		if !ok {
			stamp, after, ok = strings.Cut(rest, "):")
			if !ok {
				return false
			}
		}
		secs, serial, _ := strings.Cut(stamp, ":")
		if f, err := strconv.ParseFloat(secs, 64); err == nil && f > 0 && f < 1<<40 {
			r.Time = time.Unix(int64(f), int64((f-float64(int64(f)))*1e9)).UTC()
		}
		r.SetField("serial", serial)
		s = after
	}
	r.Type = TypeAuditdPrefix + strings.ToLower(typ)
	if r.Message == "" {
		r.Message = cut(s, MaxMessage)
	}
	enriched := ""
	if i := strings.IndexByte(s, 0x1d); i >= 0 { // enriched format: GS, then UID="root" AUID="unset"
		s, enriched = s[:i], s[i+1:]
	}
	auditPairs(s, r)
	auditPairs(enriched, r)
	return true
}

// auditPairs reads k=v pairs; a value is bare, "double-quoted" or 'single-quoted' (the user
// space message, whose pairs are read too).
func auditPairs(s string, r *Record) {
	for n := 0; len(s) > 0 && n < 4*MaxFields; n++ {
		s = strings.TrimLeft(s, " ")
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return
		}
		k := s[:eq]
		if strings.IndexByte(k, ' ') >= 0 {
			// A stray word (a field without a value): skip it.
			s = s[strings.IndexByte(k, ' ')+1:]
			continue
		}
		s = s[eq+1:]
		var v string
		switch {
		case strings.HasPrefix(s, `"`):
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				v, s = s[1:], ""
			} else {
				v, s = s[1:1+end], s[end+2:]
			}
		case strings.HasPrefix(s, `'`):
			end := strings.IndexByte(s[1:], '\'')
			inner := s[1:]
			if end >= 0 {
				inner, s = s[1:1+end], s[end+2:]
			} else {
				s = ""
			}
			if k == "msg" {
				auditPairs(inner, r)
				continue
			}
			v = inner
		default:
			end := strings.IndexByte(s, ' ')
			if end < 0 {
				end = len(s)
			}
			v, s = s[:end], s[end:]
		}
		auditField(k, v, r)
	}
}

func auditField(k, v string, r *Record) {
	switch k {
	case "acct", "id":
		if v != "?" && r.User == "" {
			r.User = cut(v, MaxField)
		}
	case "addr", "hostname":
		if ip, ok := parseIP(v); ok && r.SrcIP == "" {
			r.SrcIP = ip
		} else if v != "?" && k == "hostname" {
			r.SetField(k, v)
		}
	case "uid":
		if n, err := strconv.Atoi(v); err == nil {
			r.UID = n
		}
	case "pid":
		if n, err := strconv.Atoi(v); err == nil && r.PID < 0 {
			r.PID = n
		}
	case "terminal":
		if v != "?" {
			r.TTY = cut(v, 64)
		}
	case "res", "success":
		switch v {
		case "success", "yes", "1":
			r.Outcome = OutcomeSuccess
		case "failed", "no", "0":
			r.Outcome = OutcomeFailure
		}
	default:
		r.SetField(k, v)
	}
}

func isUpperWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c == '_' || i > 0 && isDigit(c)) {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}
