//! Target architectures and their syscall tables.
//!
//! The tables in the submodules are generated from the kernel's syscall tables and
//! declarations by `tools/syscall-tables` (see its README); do not edit them by hand.

mod i386;
mod x86_64;

/// An architecture a policy can be compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    X86_64,
    I386,
}

/// A syscall as a policy names it: the kernel's entry-point name, its number on one
/// architecture, and its parameters in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syscall {
    pub name: &'static str,
    pub nr: u32,
    pub params: &'static [Param],
}

/// A syscall parameter: the name a policy uses for it, its size in bytes (2, 4 or 8) and
/// the argument register (`seccomp_data.args` index) that holds it.
///
/// On x86-64 `reg` is the parameter's position. On i386 an 8-byte parameter takes two
/// consecutive registers, `reg` (low word) and `reg + 1` (high word), and moves every
/// later parameter along: `pread64`'s `pos` is `args[3]` and `args[4]`, `fallocate`'s
/// `len` is `args[4]` and `args[5]`. google/kafel reads such a parameter as one slot at
/// its position instead. See tools/syscall-tables/README.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    pub size: u8,
    pub reg: u8,
}

impl Param {
    /// Whether the parameter is wider than one register of `arch`, so that it is read
    /// from the pair `reg`, `reg + 1`.
    pub fn is_pair(&self, arch: Arch) -> bool {
        u32::from(self.size) > arch.register_bytes()
    }
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::I386];

    /// The value of `seccomp_data.arch` for this architecture (`AUDIT_ARCH_*`).
    pub fn audit_arch(self) -> u32 {
        match self {
            Arch::X86_64 => 0xc000_003e,
            Arch::I386 => 0x4000_0003,
        }
    }

    /// The size of an argument register in bytes: what the kernel passes one parameter
    /// in, zero-extended to 64 bits in `seccomp_data.args`.
    pub fn register_bytes(self) -> u32 {
        match self {
            Arch::X86_64 => 8,
            Arch::I386 => 4,
        }
    }

    /// The canonical name, as `--arch` and `kafel_arch` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::I386 => "i386",
        }
    }

    /// Parses a name as `--arch`, `kafel_arch` and Kafel's `ON` guards accept it,
    /// case-insensitively and with Kafel's aliases.
    pub fn from_name(name: &str) -> Option<Arch> {
        match name.to_ascii_lowercase().as_str() {
            "x86_64" | "amd64" => Some(Arch::X86_64),
            "i386" | "x86" => Some(Arch::I386),
            _ => None,
        }
    }

    /// Every syscall of this architecture, sorted by name.
    pub fn syscalls(self) -> &'static [Syscall] {
        match self {
            Arch::X86_64 => x86_64::SYSCALLS,
            Arch::I386 => i386::SYSCALLS,
        }
    }

    /// Looks a syscall up by its exact, case-sensitive name.
    pub fn syscall(self, name: &str) -> Option<&'static Syscall> {
        let table = self.syscalls();
        table
            .binary_search_by(|s| s.name.cmp(name))
            .ok()
            .map(|i| &table[i])
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
