package decode

// Decoder decodes the lines of one log format.
type Decoder interface {
	// Name is the format's name in configuration ("syslog", "journal", "cri", "docker",
	// "klog", "k8s-audit", "auditd").
	Name() string
	// Decode fills r (Reset by the caller) from one line of the file at path. An ErrFormat
	// error leaves a record with the line as its message, still worth evaluating.
	Decode(line []byte, path string, r *Record) error
}

// Formats returns a new decoder of every format, by name: the explicit list of formats a
// source may name.
func Formats() map[string]Decoder {
	ds := []Decoder{
		&Syslog{},
		&Journal{},
		&CRI{},
		&Docker{},
		&Klog{},
		&K8sAuditLog{},
		&Auditd{},
	}
	m := make(map[string]Decoder, len(ds))
	for _, d := range ds {
		m[d.Name()] = d
	}
	return m
}
