//! The seccomp profile: every syscall is allowed except those a batch job or a service has
//! no use for and that widen the kernel's attack surface or escape the sandbox. They fail
//! with `EPERM` (`clone3` with `ENOSYS`, so that libc falls back to `clone`, whose
//! namespace flags are then filtered by argument).
//!
//! Capabilities are all dropped already, so most of these would fail anyway; the filter is
//! the second wall (a kernel bug in one of them no longer matters) and it also closes what
//! an unprivileged process could otherwise do, such as create a user namespace to regain
//! capabilities inside it, or use `userfaultfd`, `bpf` and `perf_event_open`.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};
use oci_spec::OciSpecError;

/// Syscalls that fail with `EPERM` whatever their arguments.
pub const DENIED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "personality",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "stime",
    "swapon",
    "swapoff",
    "sysfs",
    "syslog",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vhangup",
    "vm86",
    "vm86old",
    "mknod",
    "mknodat",
    "chroot",
];

/// `clone` flags that create namespaces: a `clone` with any of them fails with `EPERM`.
const CLONE_NS_FLAGS: u64 = 0x0002_0000 // CLONE_NEWNS
    | 0x0200_0000 // CLONE_NEWCGROUP
    | 0x0400_0000 // CLONE_NEWUTS
    | 0x0800_0000 // CLONE_NEWIPC
    | 0x1000_0000 // CLONE_NEWUSER
    | 0x2000_0000 // CLONE_NEWPID
    | 0x4000_0000; // CLONE_NEWNET

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

fn rule(names: &[&str], errno: u32) -> Result<LinuxSyscall, OciSpecError> {
    LinuxSyscallBuilder::default()
        .names(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(errno)
        .build()
}

/// The profile for the runtime spec.
pub fn profile() -> Result<LinuxSeccomp, OciSpecError> {
    // One rule per namespace flag: `clone` fails when `flags & FLAG == FLAG`.
    let mut syscalls = vec![rule(DENIED, EPERM)?, rule(&["clone3"], ENOSYS)?];
    for bit in 0..64 {
        let flag = 1u64 << bit;
        if CLONE_NS_FLAGS & flag == 0 {
            continue;
        }
        syscalls.push(
            LinuxSyscallBuilder::default()
                .names(vec!["clone".to_string()])
                .action(LinuxSeccompAction::ScmpActErrno)
                .errno_ret(EPERM)
                .args(vec![LinuxSeccompArgBuilder::default()
                    .index(0usize)
                    .value(flag)
                    .value_two(flag)
                    .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
                    .build()?])
                .build()?,
        );
    }
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(vec![
            Arch::ScmpArchX86_64,
            Arch::ScmpArchX86,
            Arch::ScmpArchX32,
            Arch::ScmpArchAarch64,
            Arch::ScmpArchArm,
        ])
        .syscalls(syscalls)
        .build()
}
