//! Pins well-known facts of the generated syscall tables: kernel numbers, the
//! entry-point names Kafel policies use, and the parameter sizes that decide whether a
//! comparison is done on 32 or on 64 bits.

use std::collections::HashSet;

use kafel::arch::{Arch, Param, Syscall};

fn syscall(arch: Arch, name: &str) -> &'static Syscall {
    arch.syscall(name)
        .unwrap_or_else(|| panic!("{arch} has no syscall named {name}"))
}

fn param(arch: Arch, syscall_name: &str, param_name: &str) -> Param {
    let syscall = syscall(arch, syscall_name);
    *syscall
        .params
        .iter()
        .find(|p| p.name == param_name)
        .unwrap_or_else(|| panic!("{arch} {syscall_name} has no parameter {param_name}"))
}

fn params(arch: Arch, name: &str) -> Vec<(&'static str, u8)> {
    syscall(arch, name)
        .params
        .iter()
        .map(|p| (p.name, p.size))
        .collect()
}

#[test]
fn every_parameter_register_adds_up_the_registers_before_it() {
    for arch in Arch::ALL {
        for s in arch.syscalls() {
            let mut next = 0;
            for p in s.params {
                assert_eq!(p.reg, next, "{arch} {} {}", s.name, p.name);
                next += if p.is_pair(arch) { 2 } else { 1 };
            }
            assert!(next <= 6, "{arch} {} ends at register {next}", s.name);
        }
    }
}

#[test]
fn i386_sixty_four_bit_parameters_take_the_kernels_register_pairs() {
    let at = |name: &str, param_name: &str| {
        let p = param(Arch::I386, name, param_name);
        (p.reg, p.is_pair(Arch::I386))
    };
    // The registers of arch/x86/kernel/sys_ia32.c's wrappers (low word first).
    assert_eq!(at("pread64", "pos"), (3, true));
    assert_eq!(at("pwrite64", "pos"), (3, true));
    assert_eq!(at("truncate64", "length"), (1, true));
    assert_eq!(at("ftruncate64", "length"), (1, true));
    assert_eq!(at("readahead", "offset"), (1, true));
    assert_eq!(at("readahead", "count"), (3, false));
    assert_eq!(at("fadvise64", "len"), (3, false));
    assert_eq!(at("fadvise64", "advice"), (4, false));
    assert_eq!(at("fadvise64_64", "len"), (3, true));
    assert_eq!(at("fadvise64_64", "advice"), (5, false));
    assert_eq!(at("sync_file_range", "nbytes"), (3, true));
    assert_eq!(at("sync_file_range", "flags"), (5, false));
    assert_eq!(at("fallocate", "offset"), (2, true));
    assert_eq!(at("fallocate", "len"), (4, true));
    assert_eq!(at("fanotify_mark", "mask"), (2, true));
    assert_eq!(at("fanotify_mark", "pathname"), (5, false));
    // Only 8-byte parameters pair; x86-64 registers hold 64 bits.
    assert!(!param(Arch::X86_64, "fallocate", "len").is_pair(Arch::X86_64));
    assert_eq!(param(Arch::X86_64, "fallocate", "len").reg, 3);
}

#[test]
fn every_table_is_sorted_by_name_without_duplicates() {
    for arch in Arch::ALL {
        let table = arch.syscalls();
        for pair in table.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{arch}: {} is not before {}",
                pair[0].name,
                pair[1].name
            );
        }
    }
}

#[test]
fn every_syscall_number_appears_once_per_architecture() {
    for arch in Arch::ALL {
        let mut seen = HashSet::new();
        for s in arch.syscalls() {
            assert!(seen.insert(s.nr), "{arch}: number {} is used twice", s.nr);
        }
    }
}

#[test]
fn every_parameter_is_two_four_or_eight_bytes_and_at_most_six_registers_wide() {
    for arch in Arch::ALL {
        let register = if arch == Arch::X86_64 { 8 } else { 4 };
        for s in arch.syscalls() {
            let mut names = HashSet::new();
            let mut registers = 0;
            for p in s.params {
                assert!(
                    matches!(p.size, 2 | 4 | 8),
                    "{arch} {} {}: {}",
                    s.name,
                    p.name,
                    p.size
                );
                assert!(names.insert(p.name), "{arch} {}: {} twice", s.name, p.name);
                registers += usize::from(p.size).div_ceil(register);
            }
            assert!(
                registers <= 6,
                "{arch} {} takes {registers} registers",
                s.name
            );
        }
    }
}

#[test]
fn x86_64_read_is_syscall_0_with_a_32_bit_fd_and_64_bit_buffer_and_count() {
    let read = syscall(Arch::X86_64, "read");
    assert_eq!(read.nr, 0);
    assert_eq!(
        params(Arch::X86_64, "read"),
        [("fd", 4), ("buf", 8), ("count", 8)]
    );
}

#[test]
fn x86_64_uses_the_kernel_entry_point_names() {
    let expected = [
        ("newstat", 4),
        ("newfstat", 5),
        ("newlstat", 6),
        ("mmap", 9),
        ("rt_sigreturn", 15),
        ("sendfile64", 40),
        ("exit", 60),
        ("newuname", 63),
        ("umount", 166),
        ("exit_group", 231),
        ("openat", 257),
        ("newfstatat", 262),
        ("rseq", 334),
        ("clone3", 435),
        ("file_setattr", 469),
    ];
    for (name, nr) in expected {
        assert_eq!(syscall(Arch::X86_64, name).nr, nr, "x86_64 {name}");
    }
    for table_only_name in [
        "stat",
        "fstat",
        "uname",
        "sendfile",
        "umount2",
        "mmap_pgoff",
    ] {
        assert!(
            Arch::X86_64.syscall(table_only_name).is_none(),
            "x86_64 {table_only_name}"
        );
    }
}

#[test]
fn x86_64_parameter_sizes_follow_the_kernel_prototypes() {
    // unsigned long fd: a 64-bit comparison, unlike read's unsigned int fd.
    assert_eq!(param(Arch::X86_64, "writev", "fd").size, 8);
    // umode_t is 16 bits.
    assert_eq!(param(Arch::X86_64, "openat", "mode").size, 2);
    assert_eq!(param(Arch::X86_64, "openat", "flags").size, 4);
    assert_eq!(param(Arch::X86_64, "mmap", "fd").size, 8);
    assert_eq!(param(Arch::X86_64, "lseek", "offset").size, 8);
    assert_eq!(param(Arch::X86_64, "kill", "pid").size, 4);
    assert_eq!(param(Arch::X86_64, "setuid", "uid").size, 4);
    assert_eq!(
        params(Arch::X86_64, "clone"),
        [
            ("clone_flags", 8),
            ("newsp", 8),
            ("parent_tidptr", 8),
            ("child_tidptr", 8),
            ("tls", 8)
        ]
    );
}

#[test]
fn x86_64_keeps_kafels_parameter_names_where_the_kernel_renamed_them() {
    assert_eq!(
        params(Arch::X86_64, "arch_prctl"),
        [("code", 4), ("addr", 8)]
    );
    assert_eq!(param(Arch::X86_64, "statx", "statxbuf").size, 8);
    assert_eq!(params(Arch::X86_64, "setns"), [("fd", 4), ("nstype", 4)]);
}

#[test]
fn x86_64_lists_syscalls_the_kernel_no_longer_implements() {
    assert_eq!(syscall(Arch::X86_64, "sysctl").nr, 156);
    assert_eq!(syscall(Arch::X86_64, "tuxcall").nr, 184);
    assert_eq!(
        params(Arch::X86_64, "lookup_dcookie"),
        [("cookie64", 8), ("buf", 8), ("len", 8)]
    );
}

#[test]
fn x86_64_leaves_out_syscalls_newer_than_kafels_table() {
    for name in ["uprobe", "listns"] {
        assert!(Arch::X86_64.syscall(name).is_none(), "x86_64 {name}");
    }
}

#[test]
fn lookup_is_case_sensitive() {
    assert!(Arch::X86_64.syscall("READ").is_none());
    assert!(Arch::X86_64.syscall("read").is_some());
}

#[test]
fn i386_numbers_come_from_the_32_bit_table() {
    let expected = [
        ("restart_syscall", 0),
        ("exit", 1),
        ("read", 3),
        ("write", 4),
        ("close", 6),
        ("waitpid", 7),
        ("socketcall", 102),
        ("sigreturn", 119),
        ("clone", 120),
        ("rt_sigreturn", 173),
        ("pread64", 180),
        ("exit_group", 252),
        ("clock_gettime", 265),
        ("fallocate", 324),
        ("socket", 359),
        ("arch_prctl", 384),
        ("rseq", 386),
        ("clock_gettime64", 403),
        ("futex_time64", 422),
        ("clone3", 435),
        ("file_setattr", 469),
    ];
    for (name, nr) in expected {
        assert_eq!(syscall(Arch::I386, name).nr, nr, "i386 {name}");
    }
}

#[test]
fn i386_follows_kafels_entry_point_names() {
    let expected = [
        ("stat", 18),
        ("oldumount", 22),
        ("fstat", 28),
        ("umount", 52),
        ("olduname", 59),
        ("old_mmap", 90),
        ("newstat", 106),
        ("newfstat", 108),
        ("uname", 109),
        ("newuname", 122),
        ("llseek", 140),
        ("select", 142),
        ("getrlimit", 191),
        ("mmap_pgoff", 192),
        ("fstat64", 197),
        ("lchown16", 16),
        ("lchown", 198),
        ("getuid", 199),
        ("fstatat64", 300),
    ];
    for (name, nr) in expected {
        assert_eq!(syscall(Arch::I386, name).nr, nr, "i386 {name}");
    }
    for x86_64_only in ["mmap", "newfstatat", "epoll_wait_old", "tuxcall", "_llseek"] {
        assert!(
            Arch::I386.syscall(x86_64_only).is_none(),
            "i386 {x86_64_only}"
        );
    }
}

#[test]
fn i386_registers_are_4_bytes_except_16_bit_ids_and_modes() {
    assert_eq!(
        params(Arch::I386, "read"),
        [("fd", 4), ("buf", 4), ("count", 4)]
    );
    assert_eq!(param(Arch::I386, "writev", "fd").size, 4);
    assert_eq!(param(Arch::I386, "openat", "mode").size, 2);
    assert_eq!(params(Arch::I386, "setuid16"), [("uid", 2)]);
    assert_eq!(params(Arch::I386, "setuid"), [("uid", 4)]);
    assert_eq!(
        params(Arch::I386, "clone"),
        [
            ("clone_flags", 4),
            ("newsp", 4),
            ("parent_tidptr", 4),
            ("tls", 4),
            ("child_tidptr", 4)
        ]
    );
    assert_eq!(params(Arch::I386, "statx").last(), Some(&("buffer", 4)));
}

#[test]
fn i386_64_bit_values_are_one_8_byte_parameter_over_two_registers() {
    assert_eq!(
        params(Arch::I386, "pread64"),
        [("fd", 4), ("buf", 4), ("count", 4), ("pos", 8)]
    );
    assert_eq!(
        params(Arch::I386, "fallocate"),
        [("fd", 4), ("mode", 4), ("offset", 8), ("len", 8)]
    );
    assert_eq!(param(Arch::I386, "fanotify_mark", "mask").size, 8);
    // llseek passes its offset as two named 32-bit halves, as the kernel declares it.
    assert_eq!(param(Arch::I386, "llseek", "offset_high").size, 4);
}

#[test]
fn i386_time64_calls_keep_their_own_names_beside_the_32_bit_time_ones() {
    assert_eq!(syscall(Arch::I386, "futex").nr, 240);
    assert_eq!(syscall(Arch::I386, "futex_time64").nr, 422);
    assert_eq!(syscall(Arch::I386, "utimensat").nr, 320);
    assert_eq!(syscall(Arch::I386, "utimensat_time64").nr, 412);
    assert_eq!(
        params(Arch::I386, "utimensat"),
        params(Arch::I386, "utimensat_time64")
    );
}
