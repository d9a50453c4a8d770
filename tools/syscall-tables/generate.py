#!/usr/bin/env python3
"""Generates kinetd's Kafel syscall tables from a Linux kernel source tree.

Usage: generate.py KERNEL_SRC OUT_DIR

Numbers and entry points come from arch/x86/entry/syscalls/syscall_{64,32}.tbl,
parameter names and C types from the SYSCALL_DEFINEn macros in the kernel's .c
files. Beside this script, removed.txt describes the syscalls a current kernel no
longer defines, compat.txt the prototypes kept for compatibility with google/kafel's
tables, and newer.txt the syscalls left out as newer than kafel's. See README.md.
"""

import argparse
import bisect
import pathlib
import re
import shutil
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent

# Directories whose definitions never reach an x86 kernel: other architectures,
# user-mode Linux, and the no-MMU variants of memory syscalls.
EXCLUDED_PREFIXES = ("arch/", "tools/", "Documentation/", "samples/", "scripts/")
EXCLUDED_FILES = {"mm/nommu.c"}
INCLUDED_ARCH_DIRS = ("arch/x86/kernel/", "arch/x86/mm/", "arch/x86/entry/", "arch/x86/ia32/")

DEFINE_RE = re.compile(r"\b(COMPAT_SYSCALL_DEFINE|SYSCALL32_DEFINE|SYSCALL_DEFINE)(\d)\s*\(")


class Arch:
    """How one architecture's ABI sizes C types, and which table rows are its own."""

    def __init__(self, name, tbl, abis, pointer, long):
        self.name = name
        self.tbl = tbl
        self.abis = abis
        self.pointer = pointer
        self.long = long


X86_64 = Arch("x86_64", "syscall_64.tbl", {"common", "64"}, 8, 8)
I386 = Arch("i386", "syscall_32.tbl", {"i386"}, 4, 4)

# Sizes of the scalar types syscall prototypes use, in bytes; "long" stands for the
# architecture's long (8 on x86-64, 4 on i386). Typedefs follow the kernel's x86
# definitions (include/uapi/asm-generic/posix_types.h, arch/x86/include/uapi/asm/
# posix_types_{32,64}.h, include/linux/types.h).
SCALAR_SIZES = {
    # 2 bytes
    "umode_t": 2,
    "old_uid_t": 2,
    "old_gid_t": 2,
    # 4 bytes
    "int": 4,
    "unsigned": 4,
    "unsigned int": 4,
    "signed int": 4,
    "u32": 4,
    "__u32": 4,
    "s32": 4,
    "__s32": 4,
    "pid_t": 4,
    "uid_t": 4,
    "gid_t": 4,
    "qid_t": 4,
    "key_t": 4,
    "mqd_t": 4,
    "timer_t": 4,
    "clockid_t": 4,
    "key_serial_t": 4,
    "rwf_t": 4,
    "dev_t": 4,
    "old_time32_t": 4,
    "compat_int_t": 4,
    "compat_uint_t": 4,
    "compat_long_t": 4,
    "compat_ulong_t": 4,
    "compat_size_t": 4,
    "compat_mode_t": 2,
    "compat_ssize_t": 4,
    "compat_off_t": 4,
    "compat_pid_t": 4,
    "compat_uptr_t": 4,
    "compat_sigset_word": 4,
    "compat_aio_context_t": 4,
    "compat_old_sigset_t": 4,
    # 8 bytes everywhere
    "u64": 8,
    "__u64": 8,
    "s64": 8,
    "__s64": 8,
    "loff_t": 8,
    "compat_loff_t": 8,
    "unsigned long long": 8,
    "long long": 8,
    # the architecture's long
    "long": "long",
    "unsigned long": "long",
    "size_t": "long",
    "ssize_t": "long",
    "off_t": "long",
    "aio_context_t": "long",
    "old_sigset_t": "long",
    "__kernel_old_time_t": "long",
    "time_t": "long",
    "cap_user_header_t": "pointer",
    "cap_user_data_t": "pointer",
    "__sighandler_t": "pointer",
}


class GenError(Exception):
    pass


def type_size(ctype, arch):
    """Size in bytes of a C parameter type under the architecture's ABI."""
    if "*" in ctype:
        return arch.pointer
    words = [w for w in ctype.split() if w not in ("const", "volatile", "__user", "signed")]
    key = " ".join(words)
    if key == "":
        key = "int"
    size = SCALAR_SIZES.get(key)
    if size is None and words and words[0] in ("enum",):
        size = 4
    if size is None:
        raise GenError(f"no size rule for C type {ctype!r}")
    if size == "long":
        return arch.long
    if size == "pointer":
        return arch.pointer
    return size


def read_tbl(path, arch, newer):
    """Rows of a syscall_*.tbl for this architecture: (nr, table name, entry, compat),
    leaving out the syscalls in `newer` (checked against the table's names)."""
    rows = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        nr, abi, name = int(fields[0]), fields[1], fields[2]
        if abi not in arch.abis:
            continue
        if nr in newer:
            if newer.pop(nr) != name:
                raise GenError(f"newer.txt: {arch.name} {nr} is {name} in {path.name}")
            continue
        entry = fields[3] if len(fields) > 3 else None
        compat = fields[4] if len(fields) > 4 and fields[4] != "-" else None
        rows.append((nr, name, entry, compat))
    return rows


def matching_paren(text, open_at):
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    raise GenError("unbalanced parentheses")


def split_top_level(text):
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [" ".join(p.split()) for p in parts]


def expand_macros(items):
    """Expands SC_ARG64(x) and compat_arg_u64_dual(x), the macros that spell a 64-bit
    argument as two u32 halves (low word first on little-endian x86)."""
    out = []
    for item in items:
        m = re.fullmatch(r"(?:SC_ARG64|compat_arg_u64_dual)\((\w+)\)", item)
        if m:
            out += ["u32", m.group(1) + "_lo", "u32", m.group(1) + "_hi"]
        else:
            out.append(item)
    return out


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", lambda m: " " * len(m.group(0)), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def condition_stacks(text):
    """For each preprocessor directive's offset, the conditions in force after it,
    as C expressions (an #else or #elif branch carries the negated earlier ones)."""
    marks, stack = [(0, ())], []
    for m in re.finditer(r"^[ \t]*#[ \t]*(if|ifdef|ifndef|elif|else|endif)\b(.*)$", text, re.M):
        directive, expr = m.group(1), m.group(2).strip()
        # Each open #if is (negations of the branches already passed, current branch).
        if directive == "ifdef":
            stack.append(([], f"defined({expr})"))
        elif directive == "ifndef":
            stack.append(([], f"!defined({expr})"))
        elif directive == "if":
            stack.append(([], expr))
        elif directive in ("elif", "else") and stack:
            passed, current = stack.pop()
            passed = passed + ([f"!({current})"] if current else [])
            stack.append((passed, expr if directive == "elif" else None))
        elif directive == "endif" and stack:
            stack.pop()
        conds = [c for passed, current in stack for c in passed + ([current] if current else [])]
        marks.append((m.end(), tuple(conds)))
    return marks


def conditions_at(marks, offset):
    i = bisect.bisect_right([o for o, _ in marks], offset) - 1
    return marks[i][1]


def scan_definitions(root):
    """Every syscall definition in the tree: {(macro kind, name): [(params, conds)]}.

    params is a tuple of (C type, parameter name); conds are the #if conditions the
    definition sits under. A name defined more than once (under different #ifs)
    keeps each; lookup() picks the one an architecture compiles.
    """
    defs = {}
    for path in sorted(root.rglob("*.c")):
        rel = path.relative_to(root).as_posix()
        if rel in EXCLUDED_FILES:
            continue
        if rel.startswith(EXCLUDED_PREFIXES) and not rel.startswith(INCLUDED_ARCH_DIRS):
            continue
        text = path.read_text(errors="replace")
        if "DEFINE" not in text:
            continue
        text = strip_comments(text)
        marks = condition_stacks(text)
        for m in DEFINE_RE.finditer(text):
            # Skip the macros' own #define lines.
            line_start = text.rfind("\n", 0, m.start()) + 1
            if text[line_start:m.start()].lstrip().startswith("#"):
                continue
            close = matching_paren(text, m.end() - 1)
            items = expand_macros(split_top_level(text[m.end():close]))
            name, rest = items[0], items[1:]
            if len(rest) != 2 * int(m.group(2)):
                raise GenError(f"{rel}: {m.group(0)}{name}: arguments do not pair up")
            params = tuple(zip(rest[0::2], rest[1::2]))
            kind = "compat" if m.group(1) == "COMPAT_SYSCALL_DEFINE" else "native"
            if m.group(1) == "SYSCALL32_DEFINE":
                kind = "ia32"
            defs.setdefault((kind, name), []).append((params, conditions_at(marks, m.start()), rel))
    return defs


def same_params(a, b):
    """Equal parameter lists, ignoring const (which does not change the ABI)."""

    def norm(params):
        return [(" ".join(w for w in t.split() if w != "const"), n) for t, n in params]

    return norm(a) == norm(b)


def kconfig_selects(root, arch):
    """The Kconfig symbols arch/x86/Kconfig selects unconditionally for this
    architecture (config X86_32 or X86_64, and COMPAT_32 for both: an x86-64 kernel
    runs i386 code through IA32_EMULATION)."""
    owners = {"X86_32", "COMPAT_32"} if arch is I386 else {"X86_64", "COMPAT_32"}
    selected, current = set(owners), None
    for line in (root / "arch/x86/Kconfig").read_text().splitlines():
        m = re.match(r"config\s+(\w+)", line)
        if m:
            current = m.group(1)
            continue
        m = re.fullmatch(r"\s+select\s+(\w+)\s*", line)
        if m and current in owners:
            selected.add(m.group(1))
    return {"CONFIG_" + s for s in selected}


def condition_holds(cond, config, arch):
    """Evaluates a C preprocessor condition with every CONFIG_ symbol outside `config`
    unset (closed world) and other macros set; BITS_PER_LONG is the arch's."""
    expr = re.sub(r"defined\s*\(?\s*(\w+)\s*\)?", lambda m: f"_d({m.group(1)!r})", cond)
    expr = expr.replace("&&", " and ").replace("||", " or ")
    expr = re.sub(r"!(?!=)", " not ", expr)
    expr = expr.replace("BITS_PER_LONG", str(8 * arch.long))

    def is_defined(sym):
        return sym in config if sym.startswith("CONFIG_") else True

    try:
        return bool(eval(expr, {"__builtins__": {}, "_d": is_defined}))
    except Exception as e:
        raise GenError(f"cannot evaluate #if {cond!r}: {e}") from e


def data_lines(path):
    """The lines of one of the generator's data files, without comments."""
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            yield line


def parse_prototype(text, source):
    """'name(type a, type b)' as (name, ((type, a), (type, b)))."""
    m = re.fullmatch(r"(\w+)\((.*)\)", text)
    if not m:
        raise GenError(f"{source}: cannot read prototype {text!r}")
    params = []
    for decl in filter(None, (d.strip() for d in m.group(2).split(","))):
        dm = re.fullmatch(r"(.*?[\s*])(\w+)", decl)
        if not dm:
            raise GenError(f"{source}: cannot read parameter {decl!r}")
        params.append((dm.group(1).strip(), dm.group(2)))
    return m.group(1), tuple(params)


def read_removed(path, arch):
    """removed.txt: {nr: (name, params)} for syscalls with no definition in the tree."""
    out = {}
    for line in data_lines(path):
        arch_name, nr, proto = line.split(None, 2)
        if arch_name == arch.name:
            out[int(nr)] = parse_prototype(proto, path.name)
    return out


def read_compat(path, arch):
    """compat.txt: {syscall name: params} replacing the kernel's prototype."""
    out = {}
    for line in data_lines(path):
        arch_name, proto = line.split(None, 1)
        if arch_name == arch.name:
            name, params = parse_prototype(proto, path.name)
            out[name] = params
    return out


def read_newer(path, arch):
    """newer.txt: {nr: name} of syscalls left out of the tables."""
    out = {}
    for line in data_lines(path):
        arch_name, nr, name = line.split()
        if arch_name == arch.name:
            out[int(nr)] = name
    return out


def lookup(defs, kind, name, arch, config):
    """The parameters of a definition as this architecture compiles it, or None."""
    variants = defs.get((kind, name), [])
    if any(not same_params(v[0], variants[0][0]) for v in variants):
        variants = [v for v in variants if all(condition_holds(c, config, arch) for c in v[1])]
    if any(not same_params(v[0], variants[0][0]) for v in variants):
        shown = "; ".join(
            f"{rel}: " + ", ".join(f"{t} {n}" for t, n in p) for p, _, rel in variants
        )
        raise GenError(f"{name} has several definitions for {arch.name}: {shown}")
    return variants[0][0] if variants else None


def slots(params, arch):
    """How many argument registers a parameter list takes on this architecture."""
    return sum(2 if type_size(t, arch) > arch.long else 1 for t, _ in params)


def registers(name, params, arch):
    """The first argument register of each parameter. A parameter wider than the
    architecture's registers (an 8-byte one on i386) takes two consecutive registers,
    low word first, and moves every later parameter along; the kernel has six."""
    regs, reg = [], 0
    for t, _ in params:
        regs.append(reg)
        reg += 2 if type_size(t, arch) > arch.long else 1
    if reg > 6:
        raise GenError(f"{arch.name} {name}: parameters take {reg} registers, more than 6")
    return regs


def x86_64_entries(rows, defs, removed, config):
    """x86-64: the entry point's name without `sys_`, and its prototype."""
    entries = []
    for nr, table_name, entry, _compat in rows:
        if entry is None or entry == "sys_ni_syscall":
            if nr not in removed:
                continue
            name, params = removed[nr]
        else:
            name = entry.removeprefix("sys_")
            params = lookup(defs, "native", name, X86_64, config)
            if params is None:
                # Listed in the table, but the syscall's code is gone from the kernel.
                if nr not in removed:
                    continue
                name, params = removed[nr]
        entries.append((name, nr, params))
    return entries


def i386_name(table_name, entry):
    """The policy name of an i386 syscall, following kafel's convention of using the
    entry point's name, except where the entry point is a wrapper the kernel added
    later for the same syscall (y2038 `*_time32`/`*32` variants, `ia32_` register-pair
    wrappers): those keep the syscall's own name."""
    name = entry.removeprefix("sys_")
    if name in (table_name + "32", table_name + "_time32", "ia32_" + table_name):
        return table_name
    return name


def check_emulation(nr, entry, compat, defs, config):
    """Checks that the x86-64 kernel's ia32 emulation entry point (which a 32-bit
    process on an x86-64 host runs) takes as many registers as the i386 one."""
    if compat is None or compat == "sys_ni_syscall":
        return
    if compat.startswith("compat_sys_"):
        kinds, bare = ("compat", "ia32"), compat.removeprefix("compat_sys_")
    else:
        kinds, bare = ("native",), compat.removeprefix("sys_")
    emulated = None
    for kind in kinds:
        if emulated is None:
            emulated = lookup(defs, kind, bare, I386, config)
    native = lookup(defs, "ia32", entry.removeprefix("sys_"), I386, config)
    if native is None:
        native = lookup(defs, "native", entry.removeprefix("sys_"), I386, config)
    if emulated is not None and native is not None and slots(emulated, I386) != slots(native, I386):
        raise GenError(f"i386 {nr}: {entry} and {compat} take different registers")


def i386_entries(rows, defs, removed, config):
    """i386: entry-point names as i386_name() gives them, with the entry point's
    prototype. An entry point that is a 32-bit variant of a generic syscall (the
    y2038 `*32` ones, the `ia32_` wrappers, SYSCALL32_DEFINE ones) is described by the
    generic prototype when that takes the same registers: the kernel's variants
    only retype time structures or spell a 64-bit value as two u32 halves, and the
    generic prototype gives that value as one 8-byte parameter, which on i386 takes
    the same two consecutive registers (low word first)."""
    candidates = []
    for nr, table_name, entry, compat in rows:
        if entry is None or entry == "sys_ni_syscall":
            if nr in removed:
                name, params = removed[nr]
                candidates.append((name, table_name, nr, params))
            continue
        bare = entry.removeprefix("sys_")
        name = i386_name(table_name, entry)
        check_emulation(nr, entry, compat, defs, config)
        params = lookup(defs, "ia32", bare, I386, config)
        variant = params is not None or bare != name
        if params is None:
            params = lookup(defs, "native", bare, I386, config)
        if params is None:
            # Listed in the table, but the syscall's code is gone from the kernel.
            if nr in removed:
                name, params = removed[nr]
                candidates.append((name, table_name, nr, params))
            continue
        if variant:
            generic = lookup(defs, "native", name, I386, config)
            if generic is not None and slots(generic, I386) == slots(params, I386):
                params = generic
            elif bare.startswith("ia32_"):
                raise GenError(f"i386 {nr}: {entry} does not match the generic {name}")
        candidates.append((name, table_name, nr, params))

    # A y2038 syscall (clock_gettime64, ...) enters through the generic entry point,
    # whose name the 32-bit-time syscall already holds: it takes its table name.
    owners = {}
    for name, table_name, nr, _ in candidates:
        if name == table_name or name not in owners:
            owners[name] = nr
    entries = []
    for name, table_name, nr, params in candidates:
        if owners[name] != nr:
            name = table_name
        entries.append((name, nr, params))
    return entries


def apply_compat(entries, compat, arch):
    out = []
    for name, nr, params in entries:
        if name in compat:
            params = compat.pop(name)
        out.append((name, nr, params))
    if compat:
        raise GenError(f"compat.txt: {arch.name} has no syscall {', '.join(compat)}")
    return out


def check_unique(entries, arch_name):
    seen = {}
    for name, nr, _ in entries:
        if name in seen:
            raise GenError(f"{arch_name}: {name} names both {seen[name]} and {nr}")
        seen[name] = nr


def render(arch, entries, version):
    lines = [
        f"//! {arch.name} syscalls, generated by tools/syscall-tables/generate.py from",
        f"//! Linux {version} (arch/x86/entry/syscalls/{arch.tbl} and the kernel's syscall",
        "//! definitions; see the generator's README for the rules and the deliberate",
        "//! differences from the kernel). Do not edit: rerun the generator.",
        "",
        "use super::{Param, Syscall};",
        "",
        "const fn p(name: &'static str, size: u8, reg: u8) -> Param {",
        "    Param { name, size, reg }",
        "}",
        "",
        "pub(super) static SYSCALLS: &[Syscall] = &[",
    ]
    for name, nr, params in sorted(entries):
        regs = registers(name, params, arch)
        args = ", ".join(
            f'p("{n}", {type_size(t, arch)}, {reg})' for (t, n), reg in zip(params, regs)
        )
        lines.append(f'    Syscall {{ name: "{name}", nr: {nr}, params: &[{args}] }},')
    lines.append("];")
    return "\n".join(lines) + "\n"


def format_rust(path):
    """Formats a generated file as `cargo fmt` would, so that regenerating an
    unchanged table gives no diff (rustfmt reads the repository's rustfmt.toml)."""
    if shutil.which("rustfmt") is None:
        raise GenError("rustfmt is needed to format the generated tables")
    subprocess.run(["rustfmt", "--edition", "2024", str(path)], check=True)


def kernel_version(root):
    fields = {}
    for line in (root / "Makefile").read_text().splitlines()[:10]:
        m = re.fullmatch(r"(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)\s*=\s*(\S*)", line)
        if m:
            fields[m.group(1)] = m.group(2)
    return "{VERSION}.{PATCHLEVEL}.{SUBLEVEL}{EXTRAVERSION}".format(**fields)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kernel_src", type=pathlib.Path)
    parser.add_argument("out_dir", type=pathlib.Path)
    args = parser.parse_args()

    root = args.kernel_src
    tbl_dir = root / "arch/x86/entry/syscalls"
    defs = scan_definitions(root)
    version = kernel_version(root)
    builders = {X86_64: x86_64_entries, I386: i386_entries}
    for arch, build in builders.items():
        newer = read_newer(HERE / "newer.txt", arch)
        rows = read_tbl(tbl_dir / arch.tbl, arch, newer)
        if newer:
            raise GenError(f"newer.txt: {arch.name} {newer} not in {arch.tbl}")
        removed = read_removed(HERE / "removed.txt", arch)
        compat = read_compat(HERE / "compat.txt", arch)
        config = kconfig_selects(root, arch)
        entries = apply_compat(build(rows, defs, removed, config), compat, arch)
        check_unique(entries, arch.name)
        out = args.out_dir / f"{arch.name}.rs"
        out.write_text(render(arch, entries, version))
        format_rust(out)
        print(f"{out}: {len(entries)} syscalls")


if __name__ == "__main__":
    try:
        main()
    except GenError as e:
        sys.exit(f"generate.py: {e}")
