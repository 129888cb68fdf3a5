"""Cross-compilation of firmware images for a board, cached on disk.

- `compilers`: which compilers build for a board (gcc, or clang via `zig cc`), labels, flags
- `build`: compile and link a firmware (`compile_firmware`), the linker script, the runtime
- `elfcache`: the cache root, content-keyed ELFs with checksums, temporary build dirs
- `errors`: the toolchain's errors and the reading of a failed build (link overflow: exit 3)
- `procs`: tools run in their own process group, killed whole on interrupt
- `elf`: the ELF32 reader (msfsim.sim.elf names it for the backends)
- `doctor`: package data and compilers for `msfsim doctor`

Everything callers use is re-exported here: `from msfsim.toolchain import X` is the interface.
"""
from .build import (COMPILE_TIMEOUT_S, MIN_STACK_BYTES, RUNTIME_COMMON, RUNTIME_DIR, Elf,
                    compile_firmware, linker_script, runtime_sources)
from .compilers import (CLANG_NAME, COMMON_FLAGS, LINK_FLAGS, ZIG_FLAGS, ZIG_LINK_FLAGS,
                        Compiler, compilers_for, select_compiler, zig_target_flags)
from .doctor import PACKAGE_DATA, cross_compilers, doctor_rows, missing_package_data
from .elf import (EM_ARM, EM_RISCV, EM_XTENSA, PT_LOAD, SHF_ALLOC, SHT_NOBITS, SHT_SYMTAB,
                  ElfError, ElfImage, Section, Segment)
from .elfcache import cache_dir, remove_build_dirs, using_cache_dir
from .errors import LinkOverflowError, ToolchainError
from .procs import kill_descendants, run_tool, tools_in_caller_group

__all__ = ["COMPILE_TIMEOUT_S", "MIN_STACK_BYTES", "RUNTIME_COMMON", "RUNTIME_DIR", "Elf",
           "compile_firmware", "linker_script", "runtime_sources", "CLANG_NAME", "COMMON_FLAGS",
           "LINK_FLAGS", "ZIG_FLAGS", "ZIG_LINK_FLAGS", "Compiler", "compilers_for",
           "select_compiler", "zig_target_flags", "PACKAGE_DATA", "cross_compilers",
           "doctor_rows", "missing_package_data", "EM_ARM", "EM_RISCV", "EM_XTENSA", "PT_LOAD",
           "SHF_ALLOC", "SHT_NOBITS", "SHT_SYMTAB", "ElfError", "ElfImage", "Section", "Segment",
           "cache_dir", "remove_build_dirs", "using_cache_dir", "LinkOverflowError",
           "ToolchainError", "kill_descendants", "run_tool", "tools_in_caller_group"]
