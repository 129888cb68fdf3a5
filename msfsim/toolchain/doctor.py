"""The toolchain's rows of `msfsim doctor`: the package data msfsim reads at run time, each core
family's cross-compiler and the clang fallback (msfsim.sim.inventory adds the emulators')."""
from __future__ import annotations

import shutil

from msfsim import platforms

from .compilers import CLANG_NAME, tool_version, zig_available, zig_version

# What msfsim reads from its own package at run time (shipped in the wheel as package data).
PACKAGE_DATA = ("kernels_c/msf_kernels.h", "kernels_c/msf_executor.c", "kernels_c/kernels/*.c",
                "kernels_c/runtime/link.ld.in", "kernels_c/runtime/*.S", "boards/*.toml",
                "boards/families/*.toml",
                "sim/uc_count.c", "sim/qemu_plugin/msf_count.c", "codegen/templates/*.in")


def missing_package_data() -> list[str]:
    """The PACKAGE_DATA patterns that match no file in the installed package."""
    from msfsim import PACKAGE_DIR
    return [p for p in PACKAGE_DATA if not any(f.is_file() for f in PACKAGE_DIR.glob(p))]


def doctor_rows() -> list[dict[str, str]]:
    """The package data, each family's cross-compiler, and the clang fallback."""
    from msfsim import PACKAGE_DIR

    lost = missing_package_data()
    rows = [{"tool": "msfsim package data", "status": "missing" if lost else "ok",
             "detail": ("not found: " + ", ".join(lost)) if lost else
             f"kernels, runtime, boards, templates in {PACKAGE_DIR}",
             "install": "reinstall msfsim (pip install --force-reinstall msfsim)"}]
    for tool, pkg in cross_compilers():
        path = shutil.which(tool)
        rows.append({"tool": tool, "status": "ok" if path else "missing",
                     "detail": tool_version((tool,)) if path else "",
                     "install": f"apt-get install --no-install-recommends {pkg}"})
    zig = zig_available()
    rows.append({"tool": CLANG_NAME, "status": "ok" if zig else "optional, missing",
                 "detail": f"fallback compiler for Arm and RISC-V{': ' + zig_version() if zig else ''}",
                 "install": "pip install ziglang"})
    return rows


def cross_compilers() -> list[tuple[str, str]]:
    """(gcc command, Debian package) of every core family, by command."""
    found = {}
    for name in platforms.families():
        fam = platforms.family(name)
        found.setdefault(fam.gcc, fam.gcc_package)
    return sorted(found.items())
