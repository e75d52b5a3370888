// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
//go:build ignore

/*
 * mamori's runtime sensor: process, file, network and privilege events from
 * tp_btf tracepoints (sched_process_exec/fork/exit, sys_exit) or, per system
 * call, the syscalls:sys_exit_* tracepoints, filtered in the kernel (kind,
 * cgroup, path prefix, per-container de-duplication) and sent to user space
 * through one ring buffer as
 * variable-length records: struct rec_hdr followed by sections
 * (struct sect + bytes). docs/runtime-sensor.md describes the design; the Go
 * decoder is decode.go. Only CO-RE reads: the object loads on any kernel
 * with BTF that has these tracepoints (5.8+ for the ring buffer).
 */

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Event kinds; the numbering is shared with kinds.go. */
enum ev_kind {
	K_NONE = 0,
	K_EXEC, K_FORK, K_EXIT,
	K_OPEN, K_WRITE, K_LOAD, K_RENAME, K_UNLINK, K_CHMOD,
	K_CONNECT, K_ACCEPT, K_LISTEN, K_BIND,
	K_PTRACE, K_MOUNT, K_SETUID, K_SETGID, K_CAPSET, K_MODULE,
	K_UNSHARE, K_SETNS, K_MEMFD, K_SOCKET, K_BPF,
	K_MAX,
};

/* System call identities (not numbers: user space maps each architecture's
 * numbers, native and compat, to these); shared with syscalls.go. */
enum sysid {
	SYS_NONE = 0,
	SYS_OPEN, SYS_OPENAT, SYS_OPENAT2, SYS_CREAT,
	SYS_RENAME, SYS_RENAMEAT, SYS_RENAMEAT2,
	SYS_UNLINK, SYS_UNLINKAT, SYS_RMDIR,
	SYS_CHMOD, SYS_FCHMOD, SYS_FCHMODAT, SYS_FCHMODAT2,
	SYS_CONNECT, SYS_ACCEPT, SYS_ACCEPT4, SYS_LISTEN, SYS_BIND,
	SYS_PTRACE, SYS_MOUNT,
	SYS_SETUID, SYS_SETREUID, SYS_SETRESUID, SYS_SETFSUID,
	SYS_SETGID, SYS_SETREGID, SYS_SETRESGID, SYS_SETFSGID,
	SYS_CAPSET, SYS_INIT_MODULE, SYS_FINIT_MODULE,
	SYS_UNSHARE, SYS_SETNS, SYS_MEMFD_CREATE, SYS_SOCKET, SYS_BPF,
	SYS_MAX,
};

/* Section types; shared with decode.go. */
enum sect_type {
	S_PATH = 1,      /* file path (resolved, or dir + raw user string) */
	S_PATH2,         /* rename target */
	S_EXE,           /* executable path */
	S_ARGS,          /* argv, NUL separated */
	S_CWD,           /* working directory */
	S_PARENT_EXE,
	S_PARENT_COMM,
	S_SOURCE,        /* mount source */
	S_FSTYPE,        /* mount file system type */
	S_SOCKADDR,      /* raw struct sockaddr from the caller */
	S_SOCKINFO,      /* struct sockinfo from the kernel socket */
	S_NAME,          /* memfd name */
	S_FILENAME,      /* exec: file name as asked (script for #!) */
	S_MODARGS,       /* module parameters */
};

/* rec_hdr.flags */
#define F_TTY           (1 << 0)
#define F_COMPAT        (1 << 1)  /* 32-bit system call (int 0x80 / ia32) */
#define F_EXE_MEMFD     (1 << 2)
#define F_EXE_UNLINKED  (1 << 3)
#define F_ARGS_TRUNC    (1 << 4)
#define F_PATH_RESOLVED (1 << 5)  /* S_PATH came from the kernel's dentries */
#define F_PATH_TRUNC    (1 << 6)  /* a path was longer than PATH_OUT or MAX_DEPTH */
#define F_SECT_DROPPED  (1 << 7)  /* a section did not fit the record */
#define F_UNNORMALIZED  (1 << 8)  /* S_PATH holds "..": user space re-filters */
#define F_PATH2_RESOLVED (1 << 9)

struct rec_hdr {
	__u64 ts;        /* bpf_ktime_get_boot_ns */
	__u64 cgid;      /* cgroup v2 id */
	__u64 start;     /* process start, ns since boot */
	__u64 cap_eff;
	__u64 cap_perm;
	__s64 ret;
	__u64 a[6];      /* kind-specific numbers (decode.go) */
	__u32 kind;
	__u32 sysid;
	__u32 pid, tid, ppid;
	__u32 uid, gid, euid, egid, loginuid;
	__u32 mntns, pidns, netns, userns, utsns, ipcns;
	__u32 flags;
	__u32 size;      /* bytes in the record, header included */
	char comm[16];
};

struct sect {
	__u16 type;
	__u16 len;
};

struct sockinfo {
	__u16 family;
	__u16 type;
	__u16 protocol;
	__u16 lport;     /* host order */
	__u16 rport;     /* host order */
	__u16 pad;
	__u8 laddr[16];
	__u8 raddr[16];
};

/* Configuration, written by user space (slot 0 of config). */
struct sensor_config {
	__u64 kinds;        /* bit k: kind k is reported */
	__u32 self_tgid;    /* never report this process (the agent) */
	__u32 cgroup_mode;  /* 0: all but excluded; 1: only included */
	__u32 prefix_mode;  /* 0: every path; 1: the LPM trie decides */
	__u32 cgroup_filter; /* 1: the cgroups map has entries */
};

#define CG_INCLUDE 1
#define CG_EXCLUDE 2
#define PFX_INCLUDE 1
#define PFX_EXCLUDE 2

/* Bytes waiting in the ring buffer before the reader is woken; set by user
 * space at load time. */
volatile const __u64 wakeup_bytes = 65536;

/* System call number -> enum sysid, native (x86-64) and 32-bit compat
 * (ia32) tables, set by user space at load time with the calls of the
 * enabled kinds only: every other call leaves the exit program after one
 * load. SYS_TABLE must stay a power of two (the index mask). */
#define SYS_TABLE 512
volatile const __u8 sys_native[SYS_TABLE];
volatile const __u8 sys_compat[SYS_TABLE];

/* Force BTF for the shared types (bpf2go -type). */
const struct rec_hdr *unused_rec_hdr __attribute__((unused));
const struct sect *unused_sect __attribute__((unused));
const struct sockinfo *unused_sockinfo __attribute__((unused));
const struct sensor_config *unused_config __attribute__((unused));
const struct stat_counters *unused_stat __attribute__((unused));

/* IDX: a buffer offset masked for the verifier, behind a barrier so that
 * clang cannot drop a mask it proves redundant (the verifier cannot). */
#define IDX(x) ({ __u32 _i = (x); barrier_var(_i); _i & BUF_MASK; })

#define MAX_DEPTH 64        /* path components (and mount crossings) walked */
#define PATH_OUT 4096       /* bytes of one path */
#define NAME_MASK 255       /* d_name.len bound (NAME_MAX) */
#define BUF_MASK 16383      /* record offsets are masked with this for the verifier */
#define SECT_MAX (PATH_OUT + 16)
#define SECT_LIMIT (BUF_MASK + 1 - SECT_MAX - 8) /* a section starts only below this */
#define BUF_SIZE (BUF_MASK + 1 + 8192)
#define ARGS_MAX 4096
#define LPM_BYTES 256
#define SOCKADDR_MAX 128

struct lpm_key {
	__u32 prefixlen;
	__u8 data[LPM_BYTES];
};

struct scratch_buf {
	__u64 names[MAX_DEPTH];
	__u32 lens[MAX_DEPTH];
	__u32 len;          /* bytes used in buf */
	__u32 wdone;        /* walk_path: reached a root */
	__u32 w;            /* walk_path: bytes written */
	__u32 pad;
	__u8 buf[BUF_SIZE]; /* the record: rec_hdr then sections */
};

/* A system call at its exit: its identity and arguments (read from the
 * task's saved user registers, which the calls the sensor decodes do not
 * change). */
struct call {
	__u64 args[6];
	__u32 sysid;
	__u32 compat;
};

struct load_key {
	__u64 cgid;
	__u64 dev;
	__u64 ino;
};

struct stat_counters {
	__u64 emitted;   /* records written to the ring buffer */
	__u64 lost;      /* records the ring buffer had no room for */
};

/* stats slots after the kinds */
#define ST_PATH_TRUNC (K_MAX + 0)   /* paths cut at MAX_DEPTH / PATH_OUT */
#define ST_SLOTS      (K_MAX + 1)

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 23); /* resized by user space */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sensor_config);
} config_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ST_SLOTS);
	__type(key, __u32);
	__type(value, struct stat_counters);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch_buf);
} scratch_map SEC(".maps");

/* Watched path prefixes: longest match decides (PFX_INCLUDE / PFX_EXCLUDE). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_key);
	__type(value, __u8);
} prefixes SEC(".maps");

/* cgroup id -> CG_INCLUDE / CG_EXCLUDE */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u8);
} cgroups SEC(".maps");

/* Files already reported as loaded, per cgroup (issue 15: each file once per
 * container). LRU: old entries make room, the file is then reported again. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct load_key);
	__type(value, __u8);
} loaded SEC(".maps");

/* ---- helpers ---------------------------------------------------------- */

static __always_inline struct sensor_config *get_config(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&config_map, &zero);
}

static __always_inline bool kind_on(struct sensor_config *c, __u32 k)
{
	return k < 64 && (c->kinds & (1ULL << k));
}

static __always_inline void count(__u32 slot, bool lost)
{
	struct stat_counters *st = bpf_map_lookup_elem(&stats, &slot);
	if (!st)
		return;
	if (lost)
		st->lost++;
	else
		st->emitted++;
}

/* cgroup_pass: the cgroup filter. */
static __always_inline bool cgroup_pass(struct sensor_config *c, __u64 cgid)
{
	__u8 *v = bpf_map_lookup_elem(&cgroups, &cgid);
	if (c->cgroup_mode == 1)
		return v && *v == CG_INCLUDE;
	return !(v && *v == CG_EXCLUDE);
}

/* task_cgid: t is a BTF pointer (the current task or a tracepoint's
 * argument), read with direct loads. */
static __always_inline __u64 task_cgid(struct task_struct *t)
{
	return t->cgroups->dfl_cgrp->kn->id;
}

static __always_inline struct scratch_buf *get_scratch(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&scratch_map, &zero);
}

static __always_inline struct rec_hdr *hdr_of(struct scratch_buf *s)
{
	return (struct rec_hdr *)s->buf;
}

/* rec_begin starts a record of this kind in the scratch buffer: a zeroed
 * header, no section yet. */
static __always_inline struct rec_hdr *rec_begin(struct scratch_buf *s, __u32 kind)
{
	struct rec_hdr *h = hdr_of(s);
	__builtin_memset(h, 0, sizeof(*h));
	s->len = sizeof(*h);
	h->kind = kind;
	return h;
}

/* fill_task: the process part of the header, from task t (current, or the
 * child of a fork). The sections may be written already: file events fill
 * the header only once their path passed the filters. */
static __always_inline void fill_task(struct scratch_buf *s, struct task_struct *t)
{
	struct rec_hdr *h = hdr_of(s);
	/* t is a BTF pointer: direct loads (faulting reads give 0), helpers
	 * only where an address is computed */
	const struct cred *cred = t->cred;
	struct nsproxy *nsp = t->nsproxy;
	struct pid *tp = BPF_CORE_READ(t, thread_pid);
	unsigned int level = BPF_CORE_READ(tp, level);
	struct upid up = {};

	h->ts = bpf_ktime_get_boot_ns();
	h->pid = t->tgid;
	h->tid = t->pid;
	h->ppid = t->real_parent->tgid;
	h->start = t->group_leader->start_boottime;
	h->cgid = task_cgid(t);
	h->uid = cred->uid.val;
	h->gid = cred->gid.val;
	h->euid = cred->euid.val;
	h->egid = cred->egid.val;
	/* kernel_cap_t is a u64 since 6.3 and two u32 before: 8 bytes either way (little endian). */
	bpf_probe_read_kernel(&h->cap_eff, 8, &cred->cap_effective);
	bpf_probe_read_kernel(&h->cap_perm, 8, &cred->cap_permitted);
	h->loginuid = (__u32)-1;
	if (bpf_core_field_exists(t->loginuid))
		h->loginuid = t->loginuid.val;
	h->mntns = nsp->mnt_ns->ns.inum;
	h->netns = nsp->net_ns->ns.inum;
	h->utsns = nsp->uts_ns->ns.inum;
	h->ipcns = nsp->ipc_ns->ns.inum;
	h->userns = cred->user_ns->ns.inum;
	/* the active pid namespace (/proc/PID/ns/pid): thread_pid->numbers[level].ns */
	if (level < 32) {
		bpf_core_read(&up, sizeof(up), &tp->numbers[level]);
		h->pidns = BPF_CORE_READ(up.ns, ns.inum);
	}
	if (t->signal->tty)
		h->flags |= F_TTY;
	BPF_CORE_READ_STR_INTO(&h->comm, t, comm);
}

/* sect_begin returns the offset of a new section's data, or -1 when the
 * record is full (the section is dropped and flagged). */
static __always_inline int sect_begin(struct scratch_buf *s)
{
	__u32 off = s->len;
	if (off > SECT_LIMIT) {
		hdr_of(s)->flags |= F_SECT_DROPPED;
		return -1;
	}
	return off;
}

static __always_inline void sect_end(struct scratch_buf *s, __u32 off, __u16 type, __u32 len)
{
	struct sect *sc = (struct sect *)&s->buf[IDX(off)];
	if (len > SECT_MAX)
		len = SECT_MAX;
	sc->type = type;
	sc->len = len;
	s->len = off + sizeof(struct sect) + len;
}

/* put_bytes: a section of n bytes read from kernel or user memory. */
static __always_inline void put_bytes(struct scratch_buf *s, __u16 type, const void *src, __u32 n, bool user)
{
	int off = sect_begin(s);
	if (off < 0)
		return;
	if (n > PATH_OUT)
		n = PATH_OUT;
	barrier_var(n);
	n &= 2 * PATH_OUT - 1; /* for the verifier: clang may fold the clamp */
	__u8 *dst = &s->buf[IDX(off + sizeof(struct sect))];
	long r = user ? bpf_probe_read_user(dst, n, src) : bpf_probe_read_kernel(dst, n, src);
	if (r < 0)
		return;
	sect_end(s, off, type, n);
}

/* put_str: a section holding a NUL-terminated string (without the NUL). */
static __always_inline void put_str(struct scratch_buf *s, __u16 type, const void *src, __u32 max, bool user)
{
	int off = sect_begin(s);
	if (off < 0 || !src)
		return;
	if (max > PATH_OUT)
		max = PATH_OUT;
	barrier_var(max);
	max &= 2 * PATH_OUT - 1;
	__u8 *dst = &s->buf[IDX(off + sizeof(struct sect))];
	long n = user ? bpf_probe_read_user_str(dst, max, src) : bpf_probe_read_kernel_str(dst, max, src);
	if (n <= 0)
		return;
	sect_end(s, off, type, n - 1);
}

/*
 * walk_path writes the absolute path of (dentry, vfsmnt) at buf[off...],
 * as the current task sees it (stopping at its root, so a container's
 * process gets container paths), like the kernel's d_path but without
 * taking locks. Returns the bytes written. Two passes: collect the
 * component names leaf to root, then write them root first.
 *
 * A global function: the verifier checks it once, not once per caller
 * state (five call sites in the exec handler alone). Loop state lives in
 * the scratch map, not in registers: the verifier
 * then sees the same state at every iteration of a pass and verifies the
 * loops in linear time (register counters made it explore every
 * combination of branch outcomes and give up at a million instructions).
 */
__noinline int walk_path(struct scratch_buf *s, __u32 off, __u64 dentry_addr, __u64 vfsmnt_addr)
{
	struct dentry *dentry = (struct dentry *)dentry_addr;
	struct vfsmount *vfsmnt = (struct vfsmount *)vfsmnt_addr;
	if (!s)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	struct dentry *root_dentry = task->fs->root.dentry;
	struct vfsmount *root_mnt = task->fs->root.mnt;
	__u64 mnt_off = bpf_core_field_offset(struct mount, mnt);
	struct mount *mnt = (struct mount *)((void *)vfsmnt - mnt_off);
	struct dentry *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
	/* d_parent and d_name (len, name) are read with one copy where they
	 * are adjacent (every kernel this was written for): a third of the
	 * reads per component. */
	__u32 parent_off = bpf_core_field_offset(struct dentry, d_parent);
	bool adjacent = bpf_core_field_offset(struct dentry, d_name) == parent_off + 8 &&
			bpf_core_field_offset(struct qstr, len) == 4 && bpf_core_field_offset(struct qstr, name) == 8;

	__builtin_memset(s->names, 0, sizeof(s->names));
	s->wdone = 0;
	for (int i = 0; i < MAX_DEPTH; i++) {
		if (dentry == root_dentry && vfsmnt == root_mnt) {
			s->wdone = 1;
			break;
		}
		struct {
			__u64 parent;
			__u32 hash, len;
			__u64 name;
		} dn = {};
		if (adjacent) {
			bpf_probe_read_kernel(&dn, sizeof(dn), (void *)dentry + parent_off);
		} else {
			dn.parent = (__u64)BPF_CORE_READ(dentry, d_parent);
			dn.name = (__u64)BPF_CORE_READ(dentry, d_name.name);
			dn.len = BPF_CORE_READ(dentry, d_name.len);
		}
		struct dentry *parent = (struct dentry *)dn.parent;
		if (dentry == mnt_root || dentry == parent) {
			if (dentry != mnt_root) {
				/* root of an unmounted or internal tree (memfd, pipe): keep its name */
				s->names[i] = dn.name;
				s->lens[i] = dn.len;
				s->wdone = 1;
				break;
			}
			struct mount *mp = BPF_CORE_READ(mnt, mnt_parent);
			if (!mp || mp == mnt) {
				s->wdone = 1; /* the namespace's root mount */
				break;
			}
			/* a mount crossing: names[i] stays empty */
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = mp;
			vfsmnt = (struct vfsmount *)((void *)mp + mnt_off);
			mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
			continue;
		}
		s->names[i] = dn.name;
		s->lens[i] = dn.len;
		dentry = parent;
	}
	if (!*(volatile __u32 *)&s->wdone)
		hdr_of(s)->flags |= F_PATH_TRUNC;

	s->w = 0;
	for (int i = MAX_DEPTH - 1; i >= 0; i--) {
		if (!s->names[i])
			continue;
		__u32 len = s->lens[i] & NAME_MASK;
		/* volatile: a reload, which the verifier cannot track, not a
		 * register carried across iterations, which it would */
		__u32 w = *(volatile __u32 *)&s->w;
		if (w + 1 + len > PATH_OUT) {
			hdr_of(s)->flags |= F_PATH_TRUNC;
			break;
		}
		s->buf[IDX(off + w)] = '/';
		bpf_probe_read_kernel(&s->buf[IDX(off + w + 1)], len, (void *)s->names[i]);
		s->w = w + 1 + len;
	}
	__u32 w = *(volatile __u32 *)&s->w;
	if (w == 0) {
		s->buf[IDX(off)] = '/';
		w = 1;
	}
	return w & (PATH_OUT * 2 - 1);
}

/* put_path: a section with the path of a struct path. */
static __always_inline int put_path(struct scratch_buf *s, __u16 type, struct dentry *d, struct vfsmount *m)
{
	int off = sect_begin(s);
	if (off < 0 || !d || !m)
		return -1;
	int w = walk_path(s, off + sizeof(struct sect), (__u64)d, (__u64)m);
	sect_end(s, off, type, w);
	return off;
}

static __always_inline int put_file_path(struct scratch_buf *s, __u16 type, struct file *f)
{
	if (!f)
		return -1;
	struct path p = {};
	bpf_core_read(&p, sizeof(p), &f->f_path);
	return put_path(s, type, p.dentry, p.mnt);
}

/* fd_file: the file of a descriptor of t (a BTF pointer: direct loads up
 * to the descriptor array). */
static __always_inline struct file *fd_file(struct task_struct *t, long fd)
{
	struct fdtable *fdt = t->files->fdt;
	unsigned int max = fdt->max_fds;
	struct file **fds = fdt->fd;
	struct file *f = NULL;

	if (fd < 0 || fd >= max)
		return NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

#define AT_FDCWD_ -100

/*
 * put_at_path: a section with the path a *at() system call names:
 * an absolute user string as is, a relative one after the directory of
 * dirfd (or the working directory). Not normalized ("..", symlinks): user
 * space cleans it (F_UNNORMALIZED asks it to re-filter).
 */
static __always_inline int put_at_path(struct scratch_buf *s, __u16 type, struct task_struct *t, long dirfd, const char *upath)
{
	int off = sect_begin(s);
	if (off < 0 || !upath)
		return -1;
	__u32 data = off + sizeof(struct sect);
	char first = 0;
	bpf_probe_read_user(&first, 1, upath);
	__u32 w = 0;
	if (first != '/') {
		struct dentry *d = NULL;
		struct vfsmount *m = NULL;
		if ((int)dirfd == AT_FDCWD_) {
			d = BPF_CORE_READ(t, fs, pwd.dentry);
			m = BPF_CORE_READ(t, fs, pwd.mnt);
		} else {
			struct file *f = fd_file(t, (int)dirfd);
			if (f) {
				d = BPF_CORE_READ(f, f_path.dentry);
				m = BPF_CORE_READ(f, f_path.mnt);
			}
		}
		if (d && m) {
			w = walk_path(s, data, (__u64)d, (__u64)m);
			if (w > PATH_OUT)
				w = PATH_OUT;
			if (!(w == 1 && s->buf[IDX(data)] == '/')) {
				s->buf[IDX(data + w)] = '/';
				w++;
			}
		}
	}
	barrier_var(w);
	if (w > PATH_OUT)
		w = PATH_OUT;
	__u32 room = PATH_OUT - w;
	barrier_var(room);
	room &= 2 * PATH_OUT - 1;
	long n = bpf_probe_read_user_str(&s->buf[IDX(data + w)], room, upath);
	if (n > 0)
		w += n - 1;
	if (w > PATH_OUT)
		w = PATH_OUT;
	sect_end(s, off, type, w);
	return off;
}

/* path_watched: the prefix filter over the path in the section at off. */
static __always_inline bool path_watched(struct sensor_config *c, struct scratch_buf *s, int off)
{
	if (c->prefix_mode == 0)
		return true;
	if (off < 0)
		return false;
	/* The key in place, without a copy: the section header's 4 bytes
	 * (just before the path) hold the key's prefix length during the
	 * lookup. The trie compares no bit past that length, so what follows
	 * the path in the buffer does not matter. */
	struct sect *sc = (struct sect *)&s->buf[IDX(off)];
	struct sect saved = *sc;
	__u32 len = saved.len;
	if (len > LPM_BYTES)
		len = LPM_BYTES;
	struct lpm_key *k = (struct lpm_key *)sc;
	k->prefixlen = len * 8;
	__u8 *v = bpf_map_lookup_elem(&prefixes, k);
	*sc = saved;
	if (v)
		return *v == PFX_INCLUDE;
	return false;
}

/* has_dotdot: a ".." in the first LPM_BYTES of the path in the section at
 * off: such a path may name a watched file by a detour. */
static __always_inline bool has_dotdot(struct scratch_buf *s, int off)
{
	__u32 len = ((struct sect *)&s->buf[IDX(off)])->len;
	__u32 data = off + sizeof(struct sect);
	for (int i = 0; i < LPM_BYTES - 1; i++) {
		if (i + 1 >= len)
			break;
		if (s->buf[IDX(data + i)] == '.' && s->buf[IDX(data + i + 1)] == '.')
			return true;
	}
	return false;
}

/* path_check: path_watched, or let an unnormalized path through flagged. */
static __always_inline bool path_check(struct sensor_config *c, struct scratch_buf *s, int off, bool resolved)
{
	if (path_watched(c, s, off))
		return true;
	if (!resolved && off >= 0 && has_dotdot(s, off)) {
		hdr_of(s)->flags |= F_UNNORMALIZED;
		return true;
	}
	return false;
}

static __always_inline void emit(struct scratch_buf *s)
{
	struct rec_hdr *h = hdr_of(s);
	/* sections start below SECT_LIMIT and hold at most SECT_MAX bytes:
	 * a record is shorter than BUF_MASK, the mask only tells the verifier */
	__u32 len = s->len & BUF_MASK;
	__u32 kind = h->kind;
	h->size = len;
	if (h->flags & F_PATH_TRUNC)
		count(ST_PATH_TRUNC, false);
	/* Wake the reader only once a batch is waiting: a wakeup per record
	 * costs a context switch per event under a storm. The reader also
	 * polls (ebpf_linux.go, pollInterval), so a lone record waits at most
	 * that long. */
	__u64 wake = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_output(&events, s->buf, len, wake) < 0)
		count(kind < K_MAX ? kind : 0, true);
	else
		count(kind < K_MAX ? kind : 0, false);
}

/* The executable's flags: memfd and unlinked. */
static __always_inline void exe_flags(struct scratch_buf *s, struct file *f)
{
	struct dentry *d = BPF_CORE_READ(f, f_path.dentry);
	unsigned int nlink = BPF_CORE_READ(f, f_inode, i_nlink);
	char name[8] = {};
	bpf_probe_read_kernel(name, 6, BPF_CORE_READ(d, d_name.name));
	if (nlink == 0) {
		hdr_of(s)->flags |= F_EXE_UNLINKED;
		if (name[0] == 'm' && name[1] == 'e' && name[2] == 'm' && name[3] == 'f' && name[4] == 'd' && name[5] == ':')
			hdr_of(s)->flags |= F_EXE_MEMFD;
	}
}

/* report_load: a load event for file f unless this cgroup saw it already.
 * The caller has filled the header; the path section is added here. */
static __always_inline bool load_new(struct scratch_buf *s, struct file *f)
{
	struct inode *ino = BPF_CORE_READ(f, f_inode);
	umode_t mode = BPF_CORE_READ(ino, i_mode);
	if ((mode & 00170000) != 0100000) /* S_ISREG */
		return false;
	struct load_key k = {
		.cgid = hdr_of(s)->cgid,
		.dev = BPF_CORE_READ(ino, i_sb, s_dev),
		.ino = BPF_CORE_READ(ino, i_ino),
	};
	__u8 one = 1;
	if (bpf_map_lookup_elem(&loaded, &k))
		return false;
	bpf_map_update_elem(&loaded, &k, &one, BPF_ANY);
	return true;
}

static __always_inline void file_ids(struct scratch_buf *s, struct file *f)
{
	struct inode *ino = BPF_CORE_READ(f, f_inode);
	hdr_of(s)->a[4] = BPF_CORE_READ(ino, i_ino);
	hdr_of(s)->a[5] = BPF_CORE_READ(ino, i_sb, s_dev);
	hdr_of(s)->a[3] = BPF_CORE_READ(ino, i_mode);
}

static __always_inline bool self_or_filtered(struct sensor_config *c, struct task_struct *t)
{
	if (t->tgid == c->self_tgid)
		return true;
	if (!c->cgroup_filter)
		return false; /* no cgroup listed: no lookup */
	return !cgroup_pass(c, task_cgid(t));
}

/* ---- process life cycle -------------------------------------------------- */

static __always_inline void exec_event(struct scratch_buf *s, struct task_struct *p, struct linux_binprm *bprm, struct file *f)
{
	rec_begin(s, K_EXEC);
	fill_task(s, p);
	if (f) {
		exe_flags(s, f);
		file_ids(s, f);
		put_file_path(s, S_EXE, f);
	}
	/* argv from the new image's stack, written by exec just before. */
	struct mm_struct *mm = BPF_CORE_READ(p, mm);
	unsigned long as = BPF_CORE_READ(mm, arg_start), ae = BPF_CORE_READ(mm, arg_end);
	if (ae > as) {
		__u32 n = ae - as;
		if (n > ARGS_MAX) {
			n = ARGS_MAX;
			hdr_of(s)->flags |= F_ARGS_TRUNC;
		}
		put_bytes(s, S_ARGS, (void *)as, n, true);
	}
	put_path(s, S_CWD, BPF_CORE_READ(p, fs, pwd.dentry), BPF_CORE_READ(p, fs, pwd.mnt));
	put_str(s, S_FILENAME, BPF_CORE_READ(bprm, filename), PATH_OUT, false);
	struct task_struct *parent = BPF_CORE_READ(p, real_parent);
	put_str(s, S_PARENT_COMM, &parent->comm, 16, false);
	struct file *pexe = BPF_CORE_READ(parent, mm, exe_file);
	if (pexe)
		put_file_path(s, S_PARENT_EXE, pexe);
	emit(s);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct sensor_config *c = get_config();
	if (!c)
		return 0;
	bool want_exec = kind_on(c, K_EXEC), want_load = kind_on(c, K_LOAD);
	if ((!want_exec && !want_load) || self_or_filtered(c, p))
		return 0;
	struct scratch_buf *s = get_scratch();
	if (!s)
		return 0;
	struct file *f = BPF_CORE_READ(bprm, file);

	if (want_exec)
		exec_event(s, p, bprm, f);
	/* after the exec event, so user space knows the new image first */
	if (want_load && f) {
		rec_begin(s, K_LOAD);
		fill_task(s, p);
		if (load_new(s, f)) {
			file_ids(s, f);
			put_file_path(s, S_PATH, f);
			hdr_of(s)->flags |= F_PATH_RESOLVED;
			emit(s);
		}
	}
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct *parent, struct task_struct *child)
{
	struct sensor_config *c = get_config();
	if (!c || !kind_on(c, K_FORK))
		return 0;
	/* a new thread is not a new process */
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	if (self_or_filtered(c, parent))
		return 0;
	struct scratch_buf *s = get_scratch();
	if (!s)
		return 0;
	rec_begin(s, K_FORK);
	fill_task(s, child);
	hdr_of(s)->a[0] = BPF_CORE_READ(parent, tgid);
	hdr_of(s)->a[1] = BPF_CORE_READ(parent, group_leader, start_boottime);
	emit(s);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct *p)
{
	struct sensor_config *c = get_config();
	if (!c || !kind_on(c, K_EXIT))
		return 0;
	/* the last thread of the group: signal->live already dropped to 0 */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	if (self_or_filtered(c, p))
		return 0;
	struct scratch_buf *s = get_scratch();
	if (!s)
		return 0;
	rec_begin(s, K_EXIT);
	fill_task(s, p);
	struct rec_hdr *h = hdr_of(s);
	h->a[0] = BPF_CORE_READ(p, exit_code);
	h->a[1] = BPF_CORE_READ(p, signal, group_exit_code);
	h->a[2] = BPF_CORE_READ(p, signal, flags);
	emit(s);
	return 0;
}

/* ---- system calls -------------------------------------------------------- */

static __always_inline __u32 sysid_kind(__u32 sysid)
{
	switch (sysid) {
	case SYS_OPEN: case SYS_OPENAT: case SYS_OPENAT2: case SYS_CREAT:
		return K_OPEN; /* K_WRITE / K_LOAD decided at exit */
	case SYS_RENAME: case SYS_RENAMEAT: case SYS_RENAMEAT2:
		return K_RENAME;
	case SYS_UNLINK: case SYS_UNLINKAT: case SYS_RMDIR:
		return K_UNLINK;
	case SYS_CHMOD: case SYS_FCHMOD: case SYS_FCHMODAT: case SYS_FCHMODAT2:
		return K_CHMOD;
	case SYS_CONNECT: return K_CONNECT;
	case SYS_ACCEPT: case SYS_ACCEPT4: return K_ACCEPT;
	case SYS_LISTEN: return K_LISTEN;
	case SYS_BIND: return K_BIND;
	case SYS_PTRACE: return K_PTRACE;
	case SYS_MOUNT: return K_MOUNT;
	case SYS_SETUID: case SYS_SETREUID: case SYS_SETRESUID: case SYS_SETFSUID:
		return K_SETUID;
	case SYS_SETGID: case SYS_SETREGID: case SYS_SETRESGID: case SYS_SETFSGID:
		return K_SETGID;
	case SYS_CAPSET: return K_CAPSET;
	case SYS_INIT_MODULE: case SYS_FINIT_MODULE: return K_MODULE;
	case SYS_UNSHARE: return K_UNSHARE;
	case SYS_SETNS: return K_SETNS;
	case SYS_MEMFD_CREATE: return K_MEMFD;
	case SYS_SOCKET: return K_SOCKET;
	case SYS_BPF: return K_BPF;
	}
	return K_NONE;
}

#define TS_COMPAT 0x0002
#define AF_PACKET_ 17
#define SOCK_RAW_ 3

#define O_WRONLY_ 01
#define O_RDWR_ 02
#define O_CREAT_ 0100
#define O_TRUNC_ 01000
#define CAP_V1 0x19980330

static __always_inline void sockinfo_of(struct scratch_buf *s, struct file *f)
{
	if (!f)
		return;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & 00170000) != 0140000) /* S_ISSOCK */
		return;
	struct socket *so = BPF_CORE_READ(f, private_data);
	struct sock *sk = BPF_CORE_READ(so, sk);
	if (!sk)
		return;
	int off = sect_begin(s);
	if (off < 0)
		return;
	struct sockinfo *si = (struct sockinfo *)&s->buf[IDX(off + sizeof(struct sect))];
	__builtin_memset(si, 0, sizeof(*si));
	si->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	si->type = BPF_CORE_READ(sk, sk_type);
	si->protocol = BPF_CORE_READ(sk, sk_protocol);
	si->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	si->rport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (si->family == 2) {
		__u32 la = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 ra = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(si->laddr, &la, 4);
		__builtin_memcpy(si->raddr, &ra, 4);
	} else if (si->family == 10) {
		BPF_CORE_READ_INTO(&si->laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&si->raddr, sk, __sk_common.skc_v6_daddr);
	}
	sect_end(s, off, S_SOCKINFO, sizeof(*si));
}

/* finish: the process part of the header, then the record out. */
static __always_inline void finish(struct scratch_buf *s, struct task_struct *t)
{
	fill_task(s, t);
	emit(s);
}

static __always_inline void handle_open(struct sensor_config *c, struct scratch_buf *s, struct task_struct *t, struct call *in, long ret)
{
	long dirfd = AT_FDCWD_;
	const char *upath;
	__u64 flags = 0, mode = 0;
	switch (in->sysid) {
	case SYS_OPEN:
		upath = (const char *)in->args[0]; flags = in->args[1]; mode = in->args[2];
		break;
	case SYS_CREAT:
		upath = (const char *)in->args[0]; flags = O_CREAT_ | O_WRONLY_ | O_TRUNC_; mode = in->args[1];
		break;
	case SYS_OPENAT:
		dirfd = in->args[0]; upath = (const char *)in->args[1]; flags = in->args[2]; mode = in->args[3];
		break;
	default: { /* openat2: struct open_how { u64 flags, mode, resolve } */
		__u64 how[2] = {};
		dirfd = in->args[0]; upath = (const char *)in->args[1];
		bpf_probe_read_user(how, sizeof(how), (void *)in->args[2]);
		flags = how[0]; mode = how[1];
	}
	}
	bool writing = flags & (O_WRONLY_ | O_RDWR_ | O_CREAT_ | O_TRUNC_);
	__u32 kind = writing ? K_WRITE : K_OPEN;
	bool want = kind_on(c, kind);
	bool want_load = !writing && ret >= 0 && kind_on(c, K_LOAD);
	if (!want && !want_load)
		return;

	/* The path first: most opens are of unwatched files, and those cost
	 * no more than the walk and one trie lookup. */
	struct rec_hdr *h = rec_begin(s, kind);
	h->ret = ret;
	h->sysid = in->sysid;
	h->a[0] = flags;
	h->a[1] = mode;
	h->a[2] = dirfd;
	if (in->compat)
		h->flags |= F_COMPAT;
	if (ret >= 0) {
		struct file *f = fd_file(t, ret);
		if (!f)
			return;
		bool is_new_load = false;
		if (want_load) {
			h->cgid = task_cgid(t); /* the load filter's key */
			is_new_load = load_new(s, f);
		}
		if (!want && !is_new_load)
			return;
		int off = put_file_path(s, S_PATH, f);
		h->flags |= F_PATH_RESOLVED;
		bool watched = want && path_watched(c, s, off);
		if (!watched && !is_new_load)
			return;
		file_ids(s, f);
		fill_task(s, t);
		if (watched)
			emit(s);
		if (is_new_load) {
			h->kind = K_LOAD;
			emit(s);
		}
		return;
	}
	if (!want)
		return;
	int off = put_at_path(s, S_PATH, t, dirfd, upath);
	if (path_check(c, s, off, false))
		finish(s, t);
}

/*
 * on_exit builds the event of a system call the sensor decodes, at its
 * exit: the return value is known, and the arguments are still in the
 * task's saved user registers (none of these calls changes them), so no
 * program runs at system call entry.
 */
static __always_inline int on_exit(struct task_struct *t, struct pt_regs *regs, __u32 sysid, long ret, bool compat)
{
	struct sensor_config *c = get_config();
	struct scratch_buf *s = get_scratch();
	if (!c || !s)
		return 0;
	__u32 kind = sysid_kind(sysid);
	if (kind == K_OPEN) {
		if (!kind_on(c, K_OPEN) && !kind_on(c, K_WRITE) && !kind_on(c, K_LOAD))
			return 0;
	} else if (!kind_on(c, kind)) {
		return 0;
	}
	if (self_or_filtered(c, t))
		return 0;

	struct call in = { .sysid = sysid, .compat = compat };
	if (compat) {
		/* ia32 ABI: ebx, ecx, edx, esi, edi, ebp; 32-bit values */
		in.args[0] = (__u32)regs->bx;
		in.args[1] = (__u32)regs->cx;
		in.args[2] = (__u32)regs->dx;
		in.args[3] = (__u32)regs->si;
		in.args[4] = (__u32)regs->di;
		in.args[5] = (__u32)regs->bp;
		ret = (int)ret;
	} else {
		in.args[0] = regs->di;
		in.args[1] = regs->si;
		in.args[2] = regs->dx;
		in.args[3] = regs->r10;
		in.args[4] = regs->r8;
		in.args[5] = regs->r9;
	}
	if (sysid == SYS_SOCKET) {
		/* only raw and packet sockets are events */
		if ((int)in.args[0] != AF_PACKET_ && ((int)in.args[1] & 0xf) != SOCK_RAW_)
			return 0;
	}
	if (kind == K_OPEN) {
		handle_open(c, s, t, &in, ret);
		return 0;
	}
	struct rec_hdr *h = rec_begin(s, kind);
	h->ret = ret;
	h->sysid = sysid;
	if (compat)
		h->flags |= F_COMPAT;
	int off;

	/* File kinds return early: their path decides first, the process
	 * part of the header is read only for a record that goes out. */
	switch (sysid) {
	case SYS_RENAME:
	case SYS_RENAMEAT:
	case SYS_RENAMEAT2: {
		int off2;
		bool w1;
		if (sysid == SYS_RENAME) {
			off = put_at_path(s, S_PATH, t, AT_FDCWD_, (const char *)in.args[0]);
			w1 = path_check(c, s, off, false);
			off2 = put_at_path(s, S_PATH2, t, AT_FDCWD_, (const char *)in.args[1]);
		} else {
			h->a[0] = sysid == SYS_RENAMEAT2 ? in.args[4] : 0;
			off = put_at_path(s, S_PATH, t, in.args[0], (const char *)in.args[1]);
			w1 = path_check(c, s, off, false);
			off2 = put_at_path(s, S_PATH2, t, in.args[2], (const char *)in.args[3]);
		}
		if (w1 || path_check(c, s, off2, false))
			finish(s, t);
		return 0;
	}
	case SYS_UNLINK:
	case SYS_RMDIR:
		off = put_at_path(s, S_PATH, t, AT_FDCWD_, (const char *)in.args[0]);
		if (path_check(c, s, off, false))
			finish(s, t);
		return 0;
	case SYS_UNLINKAT:
		h->a[0] = in.args[2];
		off = put_at_path(s, S_PATH, t, in.args[0], (const char *)in.args[1]);
		if (path_check(c, s, off, false))
			finish(s, t);
		return 0;
	case SYS_CHMOD:
		h->a[1] = in.args[1];
		off = put_at_path(s, S_PATH, t, AT_FDCWD_, (const char *)in.args[0]);
		if (path_check(c, s, off, false))
			finish(s, t);
		return 0;
	case SYS_FCHMODAT:
	case SYS_FCHMODAT2:
		h->a[1] = in.args[2];
		h->a[0] = sysid == SYS_FCHMODAT2 ? in.args[3] : 0;
		off = put_at_path(s, S_PATH, t, in.args[0], (const char *)in.args[1]);
		if (path_check(c, s, off, false))
			finish(s, t);
		return 0;
	case SYS_FCHMOD: {
		h->a[1] = in.args[1];
		h->a[2] = in.args[0];
		struct file *f = fd_file(t, in.args[0]);
		if (!f)
			return 0;
		off = put_file_path(s, S_PATH, f);
		h->flags |= F_PATH_RESOLVED;
		if (path_watched(c, s, off)) {
			file_ids(s, f);
			finish(s, t);
		}
		return 0;
	}
	case SYS_CONNECT:
	case SYS_BIND: {
		__u32 alen = in.args[2];
		h->a[0] = in.args[0];
		if (alen > SOCKADDR_MAX)
			alen = SOCKADDR_MAX;
		if (in.args[1])
			put_bytes(s, S_SOCKADDR, (void *)in.args[1], alen, true);
		sockinfo_of(s, fd_file(t, in.args[0]));
		break;
	}
	case SYS_LISTEN:
		h->a[0] = in.args[0];
		h->a[1] = in.args[1];
		sockinfo_of(s, fd_file(t, in.args[0]));
		break;
	case SYS_ACCEPT:
	case SYS_ACCEPT4:
		h->a[0] = in.args[0];
		if (ret >= 0)
			sockinfo_of(s, fd_file(t, ret));
		else
			sockinfo_of(s, fd_file(t, in.args[0]));
		break;
	case SYS_PTRACE:
		h->a[0] = in.args[0];
		h->a[1] = in.args[1];
		break;
	case SYS_MOUNT:
		h->a[0] = in.args[3];
		put_str(s, S_SOURCE, (const char *)in.args[0], PATH_OUT, true);
		put_at_path(s, S_PATH, t, AT_FDCWD_, (const char *)in.args[1]);
		put_str(s, S_FSTYPE, (const char *)in.args[2], 64, true);
		break;
	case SYS_SETUID: case SYS_SETFSUID: case SYS_SETGID: case SYS_SETFSGID:
		h->a[0] = in.args[0];
		h->a[1] = (__u32)-1;
		h->a[2] = (__u32)-1;
		break;
	case SYS_SETREUID: case SYS_SETREGID:
		h->a[0] = in.args[0];
		h->a[1] = in.args[1];
		h->a[2] = (__u32)-1;
		break;
	case SYS_SETRESUID: case SYS_SETRESGID:
		h->a[0] = in.args[0];
		h->a[1] = in.args[1];
		h->a[2] = in.args[2];
		break;
	case SYS_CAPSET: {
		/* header {version, pid}, data[1 or 2] of {effective, permitted, inheritable} */
		__u32 hdr[2] = {}, d[6] = {};
		bpf_probe_read_user(hdr, sizeof(hdr), (void *)in.args[0]);
		if (in.args[1]) {
			if (hdr[0] == CAP_V1)
				bpf_probe_read_user(d, 12, (void *)in.args[1]);
			else
				bpf_probe_read_user(d, 24, (void *)in.args[1]);
		}
		h->a[0] = d[0] | ((__u64)d[3] << 32);
		h->a[1] = d[1] | ((__u64)d[4] << 32);
		h->a[2] = d[2] | ((__u64)d[5] << 32);
		h->a[3] = hdr[1];
		break;
	}
	case SYS_INIT_MODULE:
		h->a[0] = in.args[1];
		put_str(s, S_MODARGS, (const char *)in.args[2], 1024, true);
		break;
	case SYS_FINIT_MODULE: {
		h->a[0] = in.args[0];
		h->a[1] = in.args[2];
		struct file *f = fd_file(t, in.args[0]);
		if (f)
			put_file_path(s, S_PATH, f);
		put_str(s, S_MODARGS, (const char *)in.args[1], 1024, true);
		break;
	}
	case SYS_UNSHARE:
		h->a[0] = in.args[0];
		break;
	case SYS_SETNS: {
		h->a[0] = in.args[1];
		h->a[1] = in.args[0];
		struct file *f = fd_file(t, in.args[0]);
		if (f) {
			h->a[2] = BPF_CORE_READ(f, f_inode, i_ino);
			put_file_path(s, S_PATH, f);
		}
		break;
	}
	case SYS_MEMFD_CREATE:
		h->a[0] = in.args[1];
		put_str(s, S_NAME, (const char *)in.args[0], 256, true);
		break;
	case SYS_SOCKET:
		h->a[0] = in.args[0];
		h->a[1] = in.args[1];
		h->a[2] = in.args[2];
		break;
	case SYS_BPF: {
		__u32 first = 0;
		h->a[0] = in.args[0];
		if (in.args[1])
			bpf_probe_read_user(&first, 4, (void *)in.args[1]);
		h->a[1] = first;
		break;
	}
	default:
		return 0;
	}
	finish(s, t);
	return 0;
}

/*
 * sys_exit: every system call's exit (the raw tracepoint, native and
 * 32-bit calls alike). A call of no enabled kind costs the program one
 * register load, one task field and one table load.
 */
SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
	__u64 id = regs->orig_ax;
	if (id >= SYS_TABLE)
		return 0;
	struct task_struct *t = (struct task_struct *)bpf_get_current_task_btf();
	bool compat = t->thread_info.status & TS_COMPAT;
	__u32 sysid = compat ? sys_compat[id] : sys_native[id];
	if (!sysid)
		return 0;
	return on_exit(t, regs, sysid, ret, compat);
}

/* The context of a syscalls:sys_exit_* tracepoint program
 * (kernel/trace/trace_syscalls.c, perf_call_bpf_exit). */
struct syscall_exit_ctx {
	__u64 regs;      /* the kernel's caller registers, not the task's */
	int nr;
	int pad;
	long ret;
};

/*
 * sys_exit_tp: the same, attached to the syscalls:sys_exit_<name>
 * tracepoint of each enabled call only (user space chooses this mode):
 * other calls run no program. These tracepoints do not fire for 32-bit
 * (ia32) system calls; docs/runtime-sensor.md says when the mode is used.
 */
SEC("tracepoint/syscalls/sys_exit")
int sys_exit_tp(struct syscall_exit_ctx *ctx)
{
	__u64 id = (__u32)ctx->nr;
	if (id >= SYS_TABLE)
		return 0;
	__u32 sysid = sys_native[id];
	if (!sysid)
		return 0;
	struct task_struct *t = (struct task_struct *)bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(t);
	if (!regs)
		return 0;
	return on_exit(t, regs, sysid, ctx->ret, false);
}
