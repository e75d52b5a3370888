package sensor

import "mamori/internal/runtime/event"

// kindCodes maps the kernel's enum ev_kind (bpf/sensor.bpf.c) to event
// kinds; the index is the code. Keep both lists in the same order.
var kindCodes = [...]event.Kind{
	"", // K_NONE
	event.KindExec, event.KindFork, event.KindExit,
	event.KindOpen, event.KindWrite, event.KindLoad, event.KindRename, event.KindUnlink, event.KindChmod,
	event.KindConnect, event.KindAccept, event.KindListen, event.KindBind,
	event.KindPtrace, event.KindMount, event.KindSetuid, event.KindSetgid, event.KindCapset, event.KindModuleLoad,
	event.KindUnshare, event.KindSetns, event.KindMemfdCreate, event.KindSocket, event.KindBPF,
}

// numKinds is K_MAX: the number of kernel kind codes.
const numKinds = len(kindCodes)

// kindCode returns the kernel code of k, or 0.
func kindCode(k event.Kind) int {
	for i, c := range kindCodes {
		if i > 0 && c == k {
			return i
		}
	}
	return 0
}
