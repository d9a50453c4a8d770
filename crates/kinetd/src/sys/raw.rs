//! System calls that return `-errno` instead of setting `errno`.
//!
//! The launcher's child shares the daemon's memory (see `spawn`), and `errno` is the
//! daemon's thread-local variable: the C library's wrappers, which write it when a call
//! fails, must not run there. These make the `syscall` instruction directly; a result in
//! -4095..=-1 is `-errno`.

use std::arch::asm;

/// # Safety
/// The arguments must be valid for system call `nr`.
pub unsafe fn syscall5(nr: i64, a1: usize, a2: usize, a3: usize, a4: usize, a5: usize) -> isize {
    let ret: isize;
    // SAFETY: the x86-64 system call convention: number in rax, arguments in rdi, rsi,
    // rdx, r10, r8; the kernel clobbers rcx and r11 and returns in rax. The caller
    // vouches for the arguments.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a1,
            in("rsi") a2,
            in("rdx") a3,
            in("r10") a4,
            in("r8") a5,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// # Safety
/// As [`syscall5`].
pub unsafe fn syscall4(nr: i64, a1: usize, a2: usize, a3: usize, a4: usize) -> isize {
    // SAFETY: the caller vouches for the arguments; the fifth is unused.
    unsafe { syscall5(nr, a1, a2, a3, a4, 0) }
}

/// # Safety
/// As [`syscall5`].
pub unsafe fn syscall3(nr: i64, a1: usize, a2: usize, a3: usize) -> isize {
    // SAFETY: as above.
    unsafe { syscall5(nr, a1, a2, a3, 0, 0) }
}

/// # Safety
/// As [`syscall5`].
pub unsafe fn syscall2(nr: i64, a1: usize, a2: usize) -> isize {
    // SAFETY: as above.
    unsafe { syscall5(nr, a1, a2, 0, 0, 0) }
}

/// # Safety
/// As [`syscall5`].
pub unsafe fn syscall1(nr: i64, a1: usize) -> isize {
    // SAFETY: as above.
    unsafe { syscall5(nr, a1, 0, 0, 0, 0) }
}
