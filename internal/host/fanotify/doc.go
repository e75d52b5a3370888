// Package fanotify is a small, safe wrapper over the Linux fanotify API
// (golang.org/x/sys/unix) for host protection engines that decide whether a
// file may be opened or executed (permission events) or only watch.
//
// The Listener owns one fanotify group. Its contract, which every engine
// built on it inherits:
//
//   - Every permission event is answered, exactly once, within a deadline:
//     the handler gets a per-event time budget, after which the listener
//     answers the timeout verdict itself (Allow unless configured
//     otherwise: fail-open), so a slow or stuck engine cannot hang the host.
//   - Events of the listener's own process, of any process running the
//     listener's own executable, of excluded executables, and opens of the
//     listener's own executable file are answered Allow at once, before any
//     queue, so the agent never blocks itself.
//   - Files that are not regular files (FIFOs, devices, sockets,
//     directories) are answered at once without calling the handler and
//     without reading them.
//   - Queues are bounded: when the handler queue is full an event is
//     answered with the overflow verdict (Allow) at once and counted.
//   - Close closes the group; the kernel then answers every pending
//     permission event Allow (fs/notify/fanotify/fanotify_user.c,
//     fanotify_release), so stopping or killing the agent never leaves an
//     opener blocked.
//
// The kernel itself never times out a permission event: the sysctl
// fs.fanotify.watchdog_timeout (Linux 6.13) only logs listeners that are
// slow to answer. The deadline therefore lives here.
package fanotify
