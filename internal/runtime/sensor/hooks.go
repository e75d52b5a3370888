package sensor

import (
	"bufio"
	"bytes"
	"strings"
)

// ia32Enabled decides from the kernel's configuration (the text of
// /proc/config.gz or /boot/config-RELEASE; nil when neither could be read)
// and its command line whether it runs 32-bit (ia32) code: programs a
// per-call tracepoint would not see. Unknown counts as yes.
func ia32Enabled(config []byte, cmdline string) bool {
	on := true
	if config != nil {
		emulation, defaultOff := false, false
		sc := bufio.NewScanner(bytes.NewReader(config))
		for sc.Scan() {
			switch strings.TrimSpace(sc.Text()) {
			case "CONFIG_IA32_EMULATION=y":
				emulation = true
			case "CONFIG_IA32_EMULATION_DEFAULT_DISABLED=y":
				defaultOff = true
			}
		}
		if !emulation {
			return false
		}
		on = !defaultOff
	}
	// ia32_emulation=<bool> (Linux 6.7+) overrides the default; the last
	// one given wins, as in the kernel.
	for _, f := range strings.Fields(cmdline) {
		v, ok := strings.CutPrefix(f, "ia32_emulation=")
		if !ok {
			continue
		}
		if b, ok := kernelBool(v); ok {
			on = b
		}
	}
	return on
}

// kernelBool parses a boolean the way the kernel's kstrtobool does.
func kernelBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "y", "yes", "1", "on", "true":
		return true, true
	case "n", "no", "0", "off", "false":
		return false, true
	}
	if s != "" {
		switch s[0] {
		case 'y', 'Y', '1':
			return true, true
		case 'n', 'N', '0':
			return false, true
		}
	}
	return false, false
}
