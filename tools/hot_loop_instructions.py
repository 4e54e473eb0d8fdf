"""Instructions per element of the kernels' hot loops, neon beside avx2, from
the disassembly of the kernel translation units.

Speed cannot be measured without the hardware (emulation says nothing about
it); what the compiler emitted can. This script compiles the kernel files
with the project's release flags (without -flto: LTO objects hold no machine
code) for aarch64 (aarch64-linux-gnu-g++) and for x86-64 with AVX2+FMA (g++),
disassembles them with objdump, and for each kernel:

  1. takes the function (a thin wrapper is followed to the function it jumps
     to, one level);
  2. finds its innermost streaming loops (a backward branch to a target
     inside the function, no return in between, consuming elements as in 3,
     and no such loop inside) and keeps the longest: the unrolled main loop
     (the tail loops are shorter);
  3. counts its instructions, every instruction laid out between the branch
     target and the branch (a cold path laid out inside the body counts too),
     and the elements one iteration consumes: the bytes of the vector loads and
     stores (each address once) whose address uses an induction register, one
     the loop only steps by itself (add/sub of itself, a write-back, lea of
     itself): streamed data, not constants, spills or a recomputed constant
     address; the larger of loads and stores, over the element size.

Instructions are not time (issue width, latencies and the memory system
decide that), but the ratio of two ISAs' counts shows how much work the
compiler left per element.

    python tools/hot_loop_instructions.py            # markdown table
    python tools/hot_loop_instructions.py --verbose  # and each loop's range
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = ["-O3", "-DNDEBUG", "-std=gnu++17", "-fPIC", "-fvisibility=hidden", "-fno-math-errno", "-ffp-contract=off"]
ISAS = {
    "neon": {
        "cxx": "aarch64-linux-gnu-g++",
        "objdump": "aarch64-linux-gnu-objdump",
        "flags": [],
        "lanes": {"float": "F32x4", "double": "F64x2"},
    },
    "avx2": {
        "cxx": "g++",
        "objdump": "objdump",
        "flags": ["-mavx2", "-mfma"],
        "lanes": {"float": "F32x8", "double": "F64x4"},
    },
}
# (label, kernel file family, function name pattern; {V} = lane type, {T} = dtype).
# expsum_fast<V, 4, 2>: the unroll and block of Tuning in softmax_generic.h.
# Not here: the online exp-sum and the Gumbel loops, whose pointers and tiles
# this reading of the disassembly does not follow (their counts would be wrong).
KERNELS = [
    ("max scan (three-pass pass 1)", "softmax", r"max_scan<ssm::{isa}::{V}, {T}>\("),
    ("fast exp-sum (two-pass pass 1, logsumexp)", "softmax", r"expsum_fast<ssm::{isa}::{V}, 4, 2, {T}>\("),
    ("exp-sum after a max (three-pass pass 2)", "softmax", r"expsum<ssm::{isa}::{V}, {T}>\("),
    ("write pass, y = exp(x - c) s", "softmax", r"write_exp<ssm::{isa}::{V}, {T}>\("),
    ("write pass, y = x - c (log_softmax)", "softmax", r"write_shift<ssm::{isa}::{V}, {T}>\("),
    ("scale pass, y *= s (three-pass-reload)", "softmax", r"scale<ssm::{isa}::{V}, {T}>\("),
]
ELEMENT_BYTES = {"float": 4, "double": 8}

LINE = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")
HEADER = re.compile(r"^([0-9a-f]+) <(.*)>:$")
TARGET = re.compile(r"\b([0-9a-f]+) <")


def compile_objects(isa, families, out, reuse=False):
    spec = ISAS[isa]
    objs = {}
    for fam in families:
        obj = os.path.join(out, f"{fam}_{isa}.o")
        objs[fam] = obj
        if reuse and os.path.exists(obj):
            continue
        src = os.path.join(REPO, "csrc", "kernels", f"{fam}_{isa}.cpp")
        subprocess.run([spec["cxx"], *FLAGS, *spec["flags"], "-I", os.path.join(REPO, "csrc"), "-c", src, "-o", obj],
                       check=True)
    return objs


def functions(objdump, obj):
    """{demangled name: [(address, mnemonic, operands)]}"""
    text = subprocess.run([objdump, "-d", "-C", "--no-show-raw-insn", obj], check=True, capture_output=True,
                          text=True).stdout
    funcs, current = {}, None
    for line in text.splitlines():
        m = HEADER.match(line)
        if m:
            current = funcs.setdefault(m.group(2), [])
            continue
        m = LINE.match(line)
        if m and current is not None:
            # Comments: "// ..." (aarch64), "# ..." (x86-64; '#' marks immediates on aarch64).
            ops = m.group(3).split("//")[0] if "aarch64" in objdump else m.group(3).split("#")[0]
            current.append((int(m.group(1), 16), m.group(2), ops))
    return funcs


def is_branch(isa, mnem):
    if isa == "neon":
        return mnem in ("b", "cbz", "cbnz", "tbz", "tbnz") or mnem.startswith("b.")
    return mnem.startswith("j")


def is_call_or_jump(isa, mnem):
    return mnem in (("b", "bl") if isa == "neon" else ("jmp", "call"))


def backward_branches(isa, body):
    lo = body[0][0]
    loops = []
    for a, mnem, ops in body:
        if not is_branch(isa, mnem):
            continue
        t = TARGET.search(ops)
        if t and lo <= int(t.group(1), 16) < a:
            loops.append((int(t.group(1), 16), a))
    return loops


REG_ARM = re.compile(r"\b([xw])(\d+)\b|\bsp\b")
REG_X86 = re.compile(r"%(r\w+|e\w+)")


def norm_arm(tok):
    return "sp" if tok == "sp" else "x" + re.sub(r"^[xw]", "", tok)


def norm_x86(reg):
    if reg.startswith("e"):
        return "r" + reg[1:]
    return re.sub(r"[dwb]$", "", reg) if re.match(r"r\d+[dwb]$", reg) else reg


def memory_accesses_arm(mnem, ops):
    """(bytes, is_store, address registers, writeback) of a vector load/store, or None."""
    if not re.match(r"^(ld|st)(1|2|3|4|r|p|ur|np)$", mnem) or "[" not in ops:
        return None
    regs_part, addr = ops.split("[", 1)
    if mnem[2] in "1234":
        vecs = re.findall(r"v(\d+)\.(\d+)([bhsd])", regs_part)
        if "-" in regs_part and len(vecs) == 2:
            count = (int(vecs[1][0]) - int(vecs[0][0])) % 32 + 1
        else:
            count = len(vecs)
        size = count * int(vecs[0][1]) * {"b": 1, "h": 2, "s": 4, "d": 8}[vecs[0][2]] if vecs else 0
    else:
        names = re.findall(r"\b([qdsxw])\d+\b", regs_part)
        if not names or names[0] not in "qds":
            return None  # general-purpose registers: not the data
        size = len(names) * {"q": 16, "d": 8, "s": 4}[names[0]]
    address = "[" + addr
    regs = {norm_arm(m.group(0)) for m in REG_ARM.finditer(address.split("]")[0])}
    writeback = address.rstrip().endswith("!") or re.search(r"\],\s*#", address) is not None
    return size, mnem.startswith("st"), regs, writeback


def written_arm(mnem, ops):
    """{register: True if this write only steps it (add/sub of itself)}"""
    if mnem.startswith(("st", "b", "cb", "tb", "cmp", "cmn", "tst", "fcmp", "prfm", "ret")) or mnem == "nop":
        return {}
    regs = [norm_arm(m.group(0)) for m in REG_ARM.finditer(ops)]
    if not regs or not REG_ARM.match(ops.strip()):
        return {}
    step = mnem in ("add", "sub") and len(regs) >= 2 and regs[1] == regs[0]
    return {regs[0]: step}


def memory_accesses_x86(mnem, ops):
    m = re.search(r"(-?0x[0-9a-f]+)?\(([^)]*)\)", ops)
    if not m or mnem.startswith(("prefetch", "lea", "nop")):
        return None
    width = 64 if "%zmm" in ops else 32 if "%ymm" in ops else 16 if "%xmm" in ops else 0
    if not width:
        return None
    if re.match(r"vbroadcast|vpbroadcast", mnem):
        return None
    regs = {norm_x86(r) for r in REG_X86.findall(m.group(2))}
    store = ops.rstrip().endswith(")")  # AT&T: the destination is last
    return width, store, regs, False


def written_x86(mnem, ops):
    """{register: True if this write only steps it (add/sub/inc/dec, lea of itself)}"""
    if mnem.startswith(("cmp", "test", "j", "push", "prefetch", "vcomi", "vucomi", "nop")):
        return {}
    last = ops.split(",")[-1].strip()
    m = re.fullmatch(r"%(r\w+|e\w+)", last)
    if not m:
        return {}
    reg = norm_x86(m.group(1))
    srcs = {norm_x86(r) for r in REG_X86.findall(ops.rsplit(",", 1)[0])} if "," in ops else set()
    step = (mnem.startswith(("add", "sub")) and (not srcs or re.match(r"^\$", ops.strip()))) or \
        mnem.startswith(("inc", "dec")) or (mnem.startswith("lea") and srcs == {reg})
    return {reg: bool(step)}


def loop_elements(isa, insns, elem_bytes):
    """Elements one pass over insns consumes (see the module docstring)."""
    access = memory_accesses_arm if isa == "neon" else memory_accesses_x86
    written = written_arm if isa == "neon" else written_x86
    steps = {}  # register -> every write to it in the loop is a step of itself
    accesses = {}
    for _, mnem, ops in insns:
        for reg, step in written(mnem, ops).items():
            steps[reg] = steps.get(reg, True) and step
        acc = access(mnem, ops)
        if acc:
            address = ops.split("[", 1)[-1] if isa == "neon" else re.search(r"\S*\([^)]*\)", ops).group(0)
            accesses[acc[1], address] = acc
            if acc[3]:
                for reg in acc[2]:
                    steps.setdefault(reg, True)
    induction = {reg for reg, step in steps.items() if step}
    loads = sum(size for size, store, regs, _ in accesses.values() if not store and regs & induction)
    stores = sum(size for size, store, regs, _ in accesses.values() if store and regs & induction)
    return max(loads, stores) // elem_bytes


def streaming_loops(isa, body, elem_bytes):
    """[(start, end, instructions, elements)] of the innermost loops that stream data."""
    out = []
    for start, end in backward_branches(isa, body):
        insns = [(a, m, o) for a, m, o in body if start <= a <= end]
        if any(m in ("ret", "retq") for _, m, _ in insns):
            continue  # a jump back to shared exit code, not a loop
        elements = loop_elements(isa, insns, elem_bytes)
        if elements:
            out.append((start, end, len(insns), elements))
    return [lp for lp in out if not any(o != lp and lp[0] <= o[0] and o[1] <= lp[1] for o in out)]


def measure(isa, funcs, pattern, elem_bytes):
    regex = re.compile(pattern)
    names = [n for n in funcs if regex.search(n) and "clone" not in n]
    if not names:
        return None
    name = names[0]
    body = funcs[name]
    loops = streaming_loops(isa, body, elem_bytes)
    if not loops:  # a wrapper: follow its jump or call, one level
        for _, mnem, ops in body:
            t = TARGET.search(ops)
            if not (is_call_or_jump(isa, mnem) and t):
                continue
            addr = int(t.group(1), 16)
            hits = [(n, b) for n, b in funcs.items() if b and b[0][0] == addr]
            if hits and streaming_loops(isa, hits[0][1], elem_bytes):
                name, body = hits[0]
                break
        loops = streaming_loops(isa, body, elem_bytes)
    if not loops:
        return None
    start, end, count, elements = max(loops, key=lambda lp: lp[2])
    return {"name": name, "range": (start, end), "instructions": count, "elements": elements}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", help="keep the objects in this folder and reuse them (no recompiling)")
    parser.add_argument("--verbose", action="store_true", help="print each loop's function and address range")
    args = parser.parse_args()
    families = sorted({fam for _, fam, _ in KERNELS})
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = args.objects or tmp
        os.makedirs(out, exist_ok=True)
        for isa, spec in ISAS.items():
            objs = compile_objects(isa, families, out, reuse=bool(args.objects))
            funcs = {fam: functions(spec["objdump"], obj) for fam, obj in objs.items()}
            for label, fam, pat in KERNELS:
                for dtype in ("float", "double"):
                    p = pat.format(isa=isa, V=spec["lanes"][dtype], T=dtype)
                    results[label, dtype, isa] = measure(isa, funcs[fam], p, ELEMENT_BYTES[dtype])
    print("| hot loop | dtype | neon | avx2 | neon / avx2 |")
    print("|---|---|---|---|---|")
    for label, _, _ in KERNELS:
        for dtype in ("float", "double"):
            cells, per = [], []
            for isa in ISAS:
                r = results[label, dtype, isa]
                if not r or not r["elements"]:
                    cells.append("?")
                    per.append(None)
                    continue
                ipe = r["instructions"] / r["elements"]
                per.append(ipe)
                cells.append(f"{ipe:.2f} ({r['instructions']} per {r['elements']})")
            ratio = f"{per[0] / per[1]:.2f}" if all(per) else "?"
            print(f"| {label} | {'float32' if dtype == 'float' else 'float64'} | {cells[0]} | {cells[1]} | {ratio} |")
    if args.verbose:
        for (label, dtype, isa), r in sorted(results.items()):
            if r:
                print(f"{isa:5s} {dtype:6s} {label}: {r['name'][:120]} [{r['range'][0]:#x}, {r['range'][1]:#x}]",
                      file=sys.stderr)


if __name__ == "__main__":
    main()
