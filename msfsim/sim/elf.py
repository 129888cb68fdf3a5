"""The ELF32 reader the backends use (what to load where, where the markers and the result
record are). It lives with the toolchain that produces the images (`msfsim.toolchain`, which
sim may import and which does not import sim); this module names it for the backends."""
from msfsim.toolchain import (EM_ARM, EM_RISCV, EM_XTENSA, PT_LOAD, SHF_ALLOC, SHT_NOBITS,
                              SHT_SYMTAB, ElfError, ElfImage, Section, Segment)

__all__ = ["EM_ARM", "EM_RISCV", "EM_XTENSA", "PT_LOAD", "SHF_ALLOC", "SHT_NOBITS", "SHT_SYMTAB",
           "ElfError", "ElfImage", "Section", "Segment"]
