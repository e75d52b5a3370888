package decode

import (
	"net/netip"
	"strconv"
	"strings"
)

// Classify runs the decoder of the record's program over its message, setting Type, Outcome
// and the typed fields. Syslog and journal records are classified by their decoders; other
// callers (a forwarder receiving syslog, tests) call it themselves. The programs are an
// explicit list; lines of any program are also read for PAM's messages.
func Classify(r *Record) {
	switch r.Program {
	case "sshd", "sshd-session", "sshd-auth": // OpenSSH 9.8 moved the per-connection work to sshd-session
		sshd(r)
	case "sudo":
		sudo(r)
	case "su":
		su(r)
	case "useradd", "userdel", "usermod", "groupadd", "groupdel", "groupmod", "gpasswd", "passwd",
		"chpasswd", "chage", "newusers", "chfn", "chsh", "grpconv", "pwconv":
		accounts(r)
	case "systemd":
		systemd(r)
	case "systemd-journald":
		journald(r)
	case "kernel", "audit", "auditd":
		kernelAudit(r)
	case "kubelet":
		klogMessage(r)
	}
	if r.Type == "" {
		pam(r)
	}
}

// ---- sshd ----

// sshd decodes OpenSSH's authentication lines (auth.c, auth2.c, sshd.c, packet.c).
func sshd(r *Record) {
	m := r.Message
	// error: / fatal: / error: PAM: prefixes, as fail2ban's filter strips them.
	for _, p := range []string{"error: ", "fatal: ", "PAM: "} {
		m = strings.TrimPrefix(m, p)
	}
	switch {
	case strings.HasPrefix(m, "Failed "):
		// Failed <method> for [invalid user ]<user> from <ip> port <port> ssh2[: <key>]
		method, rest, ok := strings.Cut(m[len("Failed "):], " for ")
		if !ok || strings.IndexByte(method, ' ') >= 0 {
			return
		}
		user, ip, port, ok := userFrom(rest)
		if !ok {
			return
		}
		if u, inv := strings.CutPrefix(user, "invalid user "); inv {
			user = u
			r.SetField("invalid_user", "true")
		}
		r.setAuth(TypeSSHAuthFailed, OutcomeFailure, user, ip, port)
		r.AuthMethod = method
	case strings.HasPrefix(m, "Accepted "):
		method, rest, ok := strings.Cut(m[len("Accepted "):], " for ")
		if !ok || strings.IndexByte(method, ' ') >= 0 {
			return
		}
		user, ip, port, ok := userFrom(rest)
		if !ok {
			return
		}
		r.setAuth(TypeSSHAccepted, OutcomeSuccess, user, ip, port)
		r.AuthMethod = method
	case strings.HasPrefix(m, "Invalid user ") || strings.HasPrefix(m, "Illegal user "):
		user, ip, port, ok := userFrom(m[len("Invalid user "):])
		if ok {
			r.setAuth(TypeSSHInvalidUser, OutcomeFailure, user, ip, port)
		}
	case strings.HasPrefix(m, "maximum authentication attempts exceeded for "):
		user, ip, port, ok := userFrom(m[len("maximum authentication attempts exceeded for "):])
		if ok {
			r.setAuth(TypeSSHMaxAuth, OutcomeFailure, strings.TrimPrefix(user, "invalid user "), ip, port)
		}
	case strings.HasPrefix(m, "Disconnecting") && strings.Contains(m, "Too many authentication failures"):
		// Disconnecting: Too many authentication failures [for <user>] [preauth]
		// Disconnecting {authenticating|invalid} user <user> <ip> port <port>: Too many authentication failures [preauth]
		r.Type, r.Outcome = TypeSSHMaxAuth, OutcomeFailure
		if head, _, ok := strings.Cut(m, ": Too many"); ok {
			if user, ip, port, ok := userIPPort(strings.TrimPrefix(head, "Disconnecting ")); ok {
				r.setAuth(TypeSSHMaxAuth, OutcomeFailure, user, ip, port)
			}
		}
	case strings.HasPrefix(m, "User ") && strings.Contains(m, " not allowed because "):
		// User <user> from <ip> not allowed because <reason>
		head, reason, _ := strings.Cut(m[len("User "):], " not allowed because ")
		r.Type, r.Outcome = TypeSSHNotAllowed, OutcomeFailure
		r.SetField("reason", strings.TrimSuffix(reason, " [preauth]"))
		if i := strings.LastIndex(head, " from "); i >= 0 {
			if ip, ok := parseIP(head[i+len(" from "):]); ok {
				r.User, r.SrcIP = cut(head[:i], MaxField), ip
				return
			}
		}
		r.User = cut(head, MaxField)
	case strings.HasPrefix(m, "ROOT LOGIN REFUSED FROM "):
		ip, ok := parseIP(strings.Fields(m[len("ROOT LOGIN REFUSED FROM "):] + " ")[0])
		if ok {
			r.setAuth(TypeSSHNotAllowed, OutcomeFailure, "root", ip, 0)
		}
	case strings.HasPrefix(m, "Authentication failure for "), strings.HasPrefix(m, "authentication failure for "),
		strings.HasPrefix(m, "User not known to the underlying authentication module for "):
		_, rest, _ := strings.Cut(m, " for ")
		user, ip, port, ok := userFrom(rest)
		if ok {
			r.setAuth(TypeSSHAuthError, OutcomeFailure, user, ip, port)
		}
	case strings.HasPrefix(m, "refused connect from "):
		// refused connect from <name> (<ip>)
		if i, j := strings.LastIndexByte(m, '('), strings.LastIndexByte(m, ')'); i >= 0 && j > i {
			if ip, ok := parseIP(m[i+1 : j]); ok {
				r.setAuth(TypeSSHAuthError, OutcomeFailure, "", ip, 0)
			}
		}
	case strings.HasPrefix(m, "Received disconnect from "):
		// Received disconnect from <ip> port <port>:3: ...: Auth fail [preauth]
		rest := m[len("Received disconnect from "):]
		ip, port, tail, ok := ipPort(rest)
		if !ok {
			return
		}
		if strings.HasPrefix(tail, ":3: ") && strings.Contains(tail, "Auth fail") {
			r.setAuth(TypeSSHAuthError, OutcomeFailure, "", ip, port)
			return
		}
		r.SrcIP, r.SrcPort = ip, port
	case strings.HasPrefix(m, "Connection closed by ") || strings.HasPrefix(m, "Connection reset by ") ||
		strings.HasPrefix(m, "Disconnected from "):
		rest := m[strings.Index(m, " by ")+1:]
		if strings.HasPrefix(m, "Disconnected from ") {
			rest = m[len("Disconnected "):]
		}
		rest = strings.TrimPrefix(strings.TrimPrefix(rest, "by "), "from ")
		preauth := strings.HasSuffix(m, "[preauth]")
		if user, ip, port, ok := userIPPort(rest); ok {
			if preauth {
				r.setAuth(TypeSSHPreauthClose, "", user, ip, port)
			} else {
				r.User, r.SrcIP, r.SrcPort = user, ip, port
			}
		}
	case strings.HasPrefix(m, "Unable to negotiate with "):
		if ip, port, _, ok := ipPort(m[len("Unable to negotiate with "):]); ok {
			r.setAuth(TypeSSHNegotiation, OutcomeFailure, "", ip, port)
		}
	case strings.HasPrefix(m, "banner exchange: Connection from "), strings.HasPrefix(m, "Did not receive identification string from "),
		strings.HasPrefix(m, "Bad protocol version identification "):
		i := strings.LastIndex(m, " from ")
		if ip, port, _, ok := ipPort(m[i+len(" from "):]); i >= 0 && ok {
			r.setAuth(TypeSSHNegotiation, OutcomeFailure, "", ip, port)
		}
	case strings.HasPrefix(m, "Connection from "):
		// LogLevel VERBOSE: Connection from <ip> port <port> on <ip> port <port>
		if ip, port, _, ok := ipPort(m[len("Connection from "):]); ok {
			r.SrcIP, r.SrcPort = ip, port
		}
	}
}

func (r *Record) setAuth(typ, outcome, user, ip string, port int) {
	r.Type, r.Outcome = typ, outcome
	r.User, r.SrcIP, r.SrcPort = cut(user, MaxField), ip, port
}

// userFrom splits "<user> from <ip>[ port <port>][ ...]". User names come from the network and
// may contain " from ": the rightmost " from " followed by an address wins.
func userFrom(s string) (user, ip string, port int, ok bool) {
	end := len(s)
	for {
		i := strings.LastIndex(s[:end], " from ")
		if i < 0 {
			// "Invalid user  from ..." has an empty user: the text starts with "from ".
			if rest, found := strings.CutPrefix(s, "from "); found {
				if ip, port, _, ok := ipPort(rest); ok {
					return "", ip, port, true
				}
			}
			return "", "", 0, false
		}
		if ip, port, _, ok := ipPort(s[i+len(" from "):]); ok {
			return s[:i], ip, port, true
		}
		end = i
	}
}

// userIPPort splits "[{authenticating|invalid} user <user> ]<ip> port <port>[ ...]".
func userIPPort(s string) (user, ip string, port int, ok bool) {
	for _, p := range []string{"authenticating user ", "invalid user ", "user "} {
		if rest, found := strings.CutPrefix(s, p); found {
			// The user name may contain spaces: the address is the token before " port ".
			i := strings.LastIndex(rest, " port ")
			if i < 0 {
				return "", "", 0, false
			}
			sp := strings.LastIndexByte(rest[:i], ' ')
			if sp < 0 {
				return "", "", 0, false
			}
			ip, port, _, ok := ipPort(rest[sp+1:])
			return rest[:sp], ip, port, ok
		}
	}
	ip, port, _, ok = ipPort(s)
	return "", ip, port, ok
}

// ipPort reads "<ip>[ port <port>]" and returns what follows. sshd always follows the address
// with a space or the end of the message (an IPv6 address has colons of its own).
func ipPort(s string) (ip string, port int, tail string, ok bool) {
	end := strings.IndexByte(s, ' ')
	if end < 0 {
		end = len(s)
	}
	ip, ok = parseIP(s[:end])
	if !ok {
		return "", 0, "", false
	}
	tail = s[end:]
	if rest, found := strings.CutPrefix(tail, " port "); found {
		j := 0
		for j < len(rest) && j < 5 && isDigit(rest[j]) {
			j++
		}
		if p, err := strconv.Atoi(rest[:j]); err == nil && p <= 65535 {
			port = p
		}
		tail = rest[j:]
	}
	return ip, port, tail, true
}

// parseIP returns the canonical form of an IPv4 or IPv6 address (a v4-mapped v6 address as v4).
func parseIP(s string) (string, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return "", false
	}
	return a.Unmap().String(), true
}

// ---- PAM ----

// pam decodes pam_*(SERVICE:TYPE): messages, from any program.
func pam(r *Record) {
	m := r.Message
	if !strings.HasPrefix(m, "pam_") {
		return
	}
	open := strings.IndexByte(m, '(')
	close := strings.Index(m, "): ")
	if open < 0 || close < open {
		return
	}
	svc, kind, _ := strings.Cut(m[open+1:close], ":")
	r.PAMService = cut(svc, 64)
	r.SetField("pam_module", m[:open])
	rest := m[close+3:]
	switch {
	case kind == "auth" && strings.HasPrefix(rest, "authentication failure;"):
		// logname= uid=0 euid=0 tty=ssh ruser= rhost=1.2.3.4  user=root
		r.Type, r.Outcome = TypePAMAuthFailed, OutcomeFailure
		kv(rest[len("authentication failure;"):], func(k, v string) {
			switch k {
			case "user":
				r.User = cut(v, MaxField)
			case "uid":
				if n, err := strconv.Atoi(v); err == nil {
					r.UID = n
				}
			case "rhost":
				if ip, ok := parseIP(v); ok {
					r.SrcIP = ip
				} else if v != "" {
					r.SetField("rhost", v)
				}
			case "tty":
				r.TTY = cut(v, 64)
			case "ruser", "logname":
				if v != "" {
					r.SetField(k, v)
				}
			}
		})
		if r.User == "" { // user unknown to the system: pam_unix leaves user= out
			r.User = r.Fields["ruser"]
		}
	case kind == "session" && strings.HasPrefix(rest, "session opened for user "):
		// session opened for user root(uid=0) by alice(uid=1000)
		r.Type, r.Outcome = TypePAMSessionOpened, OutcomeSuccess
		target, by, _ := strings.Cut(rest[len("session opened for user "):], " by ")
		r.TargetUser, r.UID = nameUID(target)
		if u, _ := nameUID(by); u != "" {
			r.User = u
		}
	case kind == "session" && strings.HasPrefix(rest, "session closed for user "):
		r.Type = TypePAMSessionClosed
		r.TargetUser = cut(strings.TrimSpace(rest[len("session closed for user "):]), MaxField)
	case kind == "chauthtok" && strings.HasPrefix(rest, "password changed for "):
		r.Type, r.Outcome = TypePasswordChanged, OutcomeSuccess
		r.TargetUser = cut(strings.TrimSpace(rest[len("password changed for "):]), MaxField)
	}
}

// nameUID splits "alice(uid=1000)".
func nameUID(s string) (string, int) {
	s = strings.TrimSpace(s)
	name, rest, ok := strings.Cut(s, "(uid=")
	if !ok {
		return cut(s, MaxField), -1
	}
	n, err := strconv.Atoi(strings.TrimSuffix(rest, ")"))
	if err != nil {
		n = -1
	}
	return cut(name, MaxField), n
}

// kv calls f for each key=value pair of a space-separated list (values may be empty).
func kv(s string, f func(k, v string)) {
	for _, tok := range strings.Fields(s) {
		if k, v, ok := strings.Cut(tok, "="); ok {
			f(k, v)
		}
	}
}

// ---- sudo and su ----

// sudo decodes sudo's log lines: "USER : [STATUS ; ]TTY=... ; PWD=... ; USER=... ; COMMAND=...".
func sudo(r *Record) {
	m := strings.TrimLeft(r.Message, " ")
	user, rest, ok := strings.Cut(m, " : ")
	if !ok || strings.IndexByte(user, ' ') >= 0 {
		return
	}
	r.User = cut(user, MaxField)
	// COMMAND= is last and may itself contain " ; ".
	if i := strings.Index(rest, "COMMAND="); i >= 0 {
		r.Cmdline = cut(rest[i+len("COMMAND="):], MaxField)
		rest = rest[:i]
	}
	status := ""
	for _, part := range strings.Split(rest, " ; ") {
		part = strings.TrimSpace(part)
		k, v, ok := strings.Cut(part, "=")
		if !ok || strings.IndexByte(k, ' ') >= 0 {
			if part != "" && status == "" {
				status = part
			}
			continue
		}
		switch k {
		case "TTY":
			r.TTY = cut(v, 64)
		case "PWD":
			r.Cwd = cut(v, MaxField)
		case "USER":
			r.TargetUser = cut(v, MaxField)
		case "GROUP":
			r.Group = cut(v, MaxField)
		default:
			r.SetField(strings.ToLower(k), v)
		}
	}
	switch {
	case status == "":
		if r.Cmdline != "" {
			r.Type, r.Outcome = TypeSudoCommand, OutcomeSuccess
		}
	case strings.Contains(status, "incorrect password attempt"):
		n, _ := strconv.Atoi(strings.Fields(status)[0])
		r.Type, r.Outcome, r.Attempts = TypeSudoAuthFailed, OutcomeFailure, max(n, 1)
		r.SetField("status", status)
	case strings.Contains(status, "NOT in sudoers"), strings.Contains(status, "command not allowed"),
		strings.Contains(status, "not allowed to execute"), strings.Contains(status, "NOT allowed"):
		r.Type, r.Outcome = TypeSudoNotAllowed, OutcomeFailure
		r.SetField("status", status)
	default:
		r.SetField("status", status) // "a password is required", "TTY=unknown" ...
	}
}

// su decodes util-linux su: "FAILED SU (to root) alice on pts/0", "(to root) alice on pts/0".
func su(r *Record) {
	m := r.Message
	failed := false
	if rest, ok := strings.CutPrefix(m, "FAILED SU "); ok {
		m, failed = rest, true
	}
	rest, ok := strings.CutPrefix(m, "(to ")
	if !ok {
		return
	}
	target, rest, ok := strings.Cut(rest, ") ")
	if !ok {
		return
	}
	user, tty, _ := strings.Cut(rest, " on ")
	r.TargetUser, r.User, r.TTY = cut(target, MaxField), cut(user, MaxField), cut(tty, 64)
	if failed {
		r.Type, r.Outcome = TypeSuFailed, OutcomeFailure
	} else {
		r.Type, r.Outcome = TypeSuSession, OutcomeSuccess
	}
}

// ---- accounts: the shadow utilities and passwd ----

// accounts decodes the shadow utilities' lines (useradd, usermod, userdel, groupadd, groupmod,
// groupdel, gpasswd, passwd, chpasswd). The /etc/gshadow and "shadow group" twins of each
// change are left unclassified, so that one change is one event.
func accounts(r *Record) {
	m := r.Message
	switch {
	case strings.HasPrefix(m, "new user: "):
		// new user: name=bob, UID=1001, GID=1001, home=/home/bob, shell=/bin/bash, from=/dev/pts/0
		r.Type, r.Outcome = TypeUserAdded, OutcomeSuccess
		commaKV(m[len("new user: "):], func(k, v string) {
			switch k {
			case "name":
				r.TargetUser = cut(v, MaxField)
			case "UID":
				r.UID = atoi(v)
			case "GID":
				r.GID = atoi(v)
			default:
				r.SetField(k, v)
			}
		})
	case strings.HasPrefix(m, "new group: "):
		r.Type, r.Outcome = TypeGroupAdded, OutcomeSuccess
		commaKV(m[len("new group: "):], func(k, v string) {
			switch k {
			case "name":
				r.Group = cut(v, MaxField)
			case "GID":
				r.GID = atoi(v)
			}
		})
	case strings.HasPrefix(m, "add '") && !strings.Contains(m, "' to shadow group '"):
		// add 'bob' to group 'sudo'
		if u, g, ok := quoted2(m[len("add "):], " to group "); ok {
			r.Type, r.Outcome, r.TargetUser, r.Group = TypeGroupMemberAdded, OutcomeSuccess, u, g
		}
	case strings.HasPrefix(m, "delete '") && !strings.Contains(m, "' from shadow group '"):
		if u, g, ok := quoted2(m[len("delete "):], " from group "); ok {
			r.Type, r.Outcome, r.TargetUser, r.Group = TypeGroupMemberRemoved, OutcomeSuccess, u, g
		}
	case strings.HasPrefix(m, "user ") && strings.Contains(m, " added by ") && strings.Contains(m, " to group "):
		// gpasswd: user bob added by root to group sudo
		u, rest, _ := strings.Cut(m[len("user "):], " added by ")
		by, g, _ := strings.Cut(rest, " to group ")
		r.Type, r.Outcome = TypeGroupMemberAdded, OutcomeSuccess
		r.TargetUser, r.User, r.Group = cut(u, MaxField), cut(by, MaxField), cut(g, MaxField)
	case strings.HasPrefix(m, "user ") && strings.Contains(m, " removed by ") && strings.Contains(m, " from group "):
		u, rest, _ := strings.Cut(m[len("user "):], " removed by ")
		by, g, _ := strings.Cut(rest, " from group ")
		r.Type, r.Outcome = TypeGroupMemberRemoved, OutcomeSuccess
		r.TargetUser, r.User, r.Group = cut(u, MaxField), cut(by, MaxField), cut(g, MaxField)
	case strings.HasPrefix(m, "members of group "):
		// gpasswd -M: members of group G set by R to a,b
		g, rest, _ := strings.Cut(m[len("members of group "):], " set by ")
		by, members, _ := strings.Cut(rest, " to ")
		r.Type, r.Outcome = TypeGroupModified, OutcomeSuccess
		r.Group, r.User = cut(g, MaxField), cut(by, MaxField)
		r.SetField("members", members)
	case strings.HasPrefix(m, "delete user '"):
		r.Type, r.Outcome = TypeUserDeleted, OutcomeSuccess
		r.TargetUser = cut(unquote(m[len("delete user "):]), MaxField)
	case strings.HasPrefix(m, "removed group '"):
		// userdel: removed group 'bob' owned by 'bob'
		g, _, _ := strings.Cut(m[len("removed group "):], " owned by ")
		r.Type, r.Outcome, r.Group = TypeGroupDeleted, OutcomeSuccess, cut(unquote(g), MaxField)
	case strings.HasPrefix(m, "group '") && strings.HasSuffix(m, "' removed"):
		r.Type, r.Outcome = TypeGroupDeleted, OutcomeSuccess
		r.Group = cut(unquote(strings.TrimSuffix(m[len("group "):], " removed")), MaxField)
	case strings.HasPrefix(m, "group changed in /etc/group ("):
		// group changed in /etc/group (group devs/1002, new name: devs2)
		inner := strings.TrimSuffix(m[len("group changed in /etc/group ("):], ")")
		r.Type, r.Outcome = TypeGroupModified, OutcomeSuccess
		first, change, _ := strings.Cut(inner, ", ")
		name, gid, _ := strings.Cut(strings.TrimPrefix(first, "group "), "/")
		r.Group, r.GID = cut(name, MaxField), atoi(gid)
		if k, v, ok := strings.Cut(change, ": "); ok {
			r.SetField("change", k)
			r.SetField("to", v)
		}
	case strings.HasPrefix(m, "change user '"):
		// change user 'bob' shell from '/bin/sh' to '/bin/bash'; change user 'bob' UID from '1001' to '0';
		// change user 'bob' password
		rest := m[len("change user "):]
		u, rest, ok := cutQuoted(rest)
		if !ok {
			return
		}
		r.TargetUser = cut(u, MaxField)
		attr, change, _ := strings.Cut(strings.TrimSpace(rest), " from ")
		if attr == "password" {
			r.Type, r.Outcome = TypePasswordChanged, OutcomeSuccess
			return
		}
		r.Type, r.Outcome = TypeUserModified, OutcomeSuccess
		r.SetField("attribute", attr)
		if from, rest, ok := cutQuoted(change); ok {
			r.SetField("from", from)
			if to, _, ok := cutQuoted(strings.TrimPrefix(rest, " to ")); ok {
				r.SetField("to", to)
				if attr == "UID" {
					r.UID = atoi(to)
				}
				if attr == "GID" {
					r.GID = atoi(to)
				}
			}
		}
	case strings.HasPrefix(m, "change user name '"):
		// change user name 'old' to 'new'
		old, rest, ok := cutQuoted(m[len("change user name "):])
		if !ok {
			return
		}
		nu, _, _ := cutQuoted(strings.TrimPrefix(rest, " to "))
		r.Type, r.Outcome, r.TargetUser = TypeUserModified, OutcomeSuccess, cut(old, MaxField)
		r.SetField("attribute", "name")
		r.SetField("from", old)
		r.SetField("to", nu)
	case strings.HasPrefix(m, "lock user '"), strings.HasPrefix(m, "unlock user '"):
		verb, rest, _ := strings.Cut(m, " user ")
		u, _, _ := cutQuoted(rest)
		r.Type, r.Outcome, r.TargetUser = TypeUserModified, OutcomeSuccess, cut(u, MaxField)
		r.SetField("attribute", verb)
	case strings.HasPrefix(m, "password for '"):
		// passwd: password for 'bob' changed by 'root'
		u, rest, ok := cutQuoted(m[len("password for "):])
		if !ok {
			return
		}
		by, _, _ := cutQuoted(strings.TrimPrefix(rest, " changed by "))
		r.Type, r.Outcome, r.TargetUser, r.User = TypePasswordChanged, OutcomeSuccess, cut(u, MaxField), cut(by, MaxField)
	}
}

// commaKV calls f for each "k=v" of a ", "-separated list.
func commaKV(s string, f func(k, v string)) {
	for _, part := range strings.Split(s, ", ") {
		if k, v, ok := strings.Cut(part, "="); ok {
			f(k, v)
		}
	}
}

// quoted2 reads "'a'<sep>'b'".
func quoted2(s, sep string) (string, string, bool) {
	a, rest, ok := cutQuoted(s)
	if !ok {
		return "", "", false
	}
	rest, ok = strings.CutPrefix(rest, sep)
	if !ok {
		return "", "", false
	}
	b, _, ok := cutQuoted(rest)
	return cut(a, MaxField), cut(b, MaxField), ok
}

// cutQuoted reads a '-quoted value at the start of s and returns it and what follows.
func cutQuoted(s string) (string, string, bool) {
	if len(s) < 2 || s[0] != '\'' {
		return "", s, false
	}
	end := strings.IndexByte(s[1:], '\'')
	if end < 0 {
		return "", s, false
	}
	return s[1 : 1+end], s[end+2:], true
}

func unquote(s string) string {
	if v, _, ok := cutQuoted(s); ok {
		return v
	}
	return s
}

func atoi(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return -1
	}
	return n
}

// ---- systemd and journald ----

var unitSuffixes = []string{".service", ".socket", ".timer", ".mount", ".scope", ".slice", ".target",
	".path", ".swap", ".device", ".automount"}

// systemd decodes the service manager's job messages: "Started UNIT - DESC.", "Stopped UNIT -
// DESC." (systemd 250+; older versions log the description only, the journal's UNIT field then
// names the unit), "Failed to start ...", "UNIT: Main process exited, code=killed, ...".
func systemd(r *Record) {
	m := r.Message
	verb := ""
	for _, v := range []string{"Started ", "Stopping ", "Stopped ", "Failed to start "} {
		if strings.HasPrefix(m, v) {
			verb = v
			break
		}
	}
	if verb != "" {
		rest := strings.TrimSuffix(strings.TrimSuffix(m[len(verb):], "..."), ".")
		if u, desc, ok := strings.Cut(rest, " - "); ok && isUnit(u) {
			r.Unit = cut(u, MaxField)
			r.SetField("description", desc)
		} else {
			if r.Unit == "" && isUnit(rest) {
				r.Unit = cut(rest, MaxField)
			}
			r.SetField("description", rest)
		}
		switch verb {
		case "Started ":
			r.Type, r.Outcome = TypeServiceStarted, OutcomeSuccess
		case "Stopping ":
			r.Type = TypeServiceStopping
		case "Stopped ":
			r.Type, r.Outcome = TypeServiceStopped, OutcomeSuccess
		case "Failed to start ":
			r.Type, r.Outcome = TypeServiceFailed, OutcomeFailure
		}
		return
	}
	// UNIT: Failed with result 'exit-code'. / UNIT: Main process exited, code=killed, status=9/KILL
	u, rest, ok := strings.Cut(m, ": ")
	if !ok || !isUnit(u) {
		return
	}
	r.Unit = cut(u, MaxField)
	switch {
	case strings.HasPrefix(rest, "Failed with result "):
		r.Type, r.Outcome = TypeServiceFailed, OutcomeFailure
		r.SetField("result", strings.Trim(strings.TrimPrefix(rest, "Failed with result "), "'."))
	case strings.HasPrefix(rest, "Main process exited, code=killed"):
		r.Type, r.Outcome = TypeServiceKilled, OutcomeFailure
		if _, st, ok := strings.Cut(rest, "status="); ok {
			r.SetField("status", st)
		}
	}
}

func isUnit(s string) bool {
	if s == "" || strings.IndexByte(s, ' ') >= 0 {
		return false
	}
	for _, suf := range unitSuffixes {
		if strings.HasSuffix(s, suf) {
			return true
		}
	}
	return false
}

// journald decodes the journal daemon's vacuum messages.
func journald(r *Record) {
	m := r.Message
	switch {
	case strings.HasPrefix(m, "Deleted archived journal "):
		// Deleted archived journal /var/log/journal/ID/system@....journal (8.0M).
		p := m[len("Deleted archived journal "):]
		if i := strings.LastIndex(p, " ("); i >= 0 {
			r.SetField("size", strings.TrimSuffix(strings.TrimSuffix(p[i+2:], "."), ")"))
			p = p[:i]
		}
		r.Type, r.FilePath = TypeJournalVacuum, cut(p, MaxField)
	case strings.HasPrefix(m, "Vacuuming done, freed "):
		// Vacuuming done, freed 24.0M of archived journals from /var/log/journal/ID.
		rest := m[len("Vacuuming done, freed "):]
		size, dir, _ := strings.Cut(rest, " of archived journals from ")
		r.SetField("freed", size)
		r.Type, r.FilePath = TypeJournalVacuum, cut(strings.TrimSuffix(dir, "."), MaxField)
	}
}

// kernelAudit decodes the kernel's audit records as they reach syslog or the journal
// ("audit: type=1100 audit(1700000000.123:45): ..." or, from the audit transport,
// "USER_AUTH pid=... msg='...'").
func kernelAudit(r *Record) {
	m := r.Message
	if m != "" && m[0] == '[' { // kernel time stamp "[ 1234.567890] "
		if i := strings.Index(m, "] "); i >= 0 {
			m = m[i+2:]
		}
	}
	rest, ok := strings.CutPrefix(m, "audit: ")
	if !ok {
		if r.Program == "kernel" {
			return
		}
		rest = m
	}
	parseAuditRecord(rest, r)
}
