"""Run generated code on the host: the same kernels, arena, executor and generated C as the
firmware, compiled with cffi (msfsim.host_build). `msf_fatal` returns to Python as HostFatal.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from msfsim import KERNELS_DIR, host_build
from msfsim.codegen import GeneratedCode, generate_block, generate_plan
from msfsim.fusion.block import Block
from msfsim.ir import Model

KERNELS_C = KERNELS_DIR
ARENA_FILL = 0x5A  # arena bytes before a run: reading unwritten data gives visibly wrong output

CDEF = """
int msf_host_run(const int8_t *input, int8_t *output, uint32_t *high_water, int fill);
"""

HARNESS = """
#include <setjmp.h>
#include <string.h>
#include "msf_arena.h"

static jmp_buf msf_host_jmp;
static int msf_host_code;
/* Exactly MSF_ARENA_BYTES (rounded to words): a claim past the plan is an overflow. */
static uint32_t msf_host_storage[(MSF_ARENA_BYTES + 3u) / 4u + 1u];

void msf_fatal(int code)
{
    msf_host_code = code;
    longjmp(msf_host_jmp, 1);
}

int msf_host_run(const int8_t *input, int8_t *output, uint32_t *high_water, int fill)
{
    if (setjmp(msf_host_jmp)) {
        return msf_host_code;
    }
    memset(msf_host_storage, fill, sizeof msf_host_storage);
    msf_arena_init(msf_host_storage, MSF_ARENA_BYTES);
    const int8_t *out = msf_generated_run(input);
    memcpy(output, out, MSF_OUTPUT_BYTES);
    *high_water = msf_arena_high_water();
    return 0;
}
"""


class HostFatal(RuntimeError):
    """The generated code called msf_fatal(code)."""

    def __init__(self, code: int):
        super().__init__(f"msf_fatal({code})")
        self.code = code


def _sources_dir(code: GeneratedCode) -> Path:
    """Generated files in a directory named by their content (reused across runs)."""
    h = hashlib.sha256()
    for name in sorted(code.files):
        h.update(name.encode() + b"\0" + code.files[name].encode() + b"\0")
    d = host_build.cache_dir() / "generated" / h.hexdigest()[:20]
    if not d.exists():
        d.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="gen-", dir=d.parent))
        code.write(tmp)
        try:
            os.replace(tmp, d)
        except OSError:  # another process put it there first
            pass
    return d


def build(code: GeneratedCode):
    """(ffi, lib) of kernels + arena + executor + generated code with the host harness."""
    gen = _sources_dir(code)
    sources = sorted((KERNELS_C / "kernels").glob("*.c")) + [
        KERNELS_C / "msf_arena.c", KERNELS_C / "msf_executor.c", gen / "msf_generated.c"]
    return host_build.build("plan", sources, CDEF, include_dirs=[KERNELS_C, gen],
                            headers=["msf_generated.h"], preamble=HARNESS)


def run_code(code: GeneratedCode, x: np.ndarray, fill: int = ARENA_FILL
             ) -> tuple[np.ndarray, int]:
    """Run generated code on `x` (its input bytes) -> (output bytes, arena high-water)."""
    ffi, lib = build(code)
    data = np.ascontiguousarray(np.asarray(x, np.int8).ravel())
    if data.size != code.input_bytes:
        raise ValueError(f"input has {data.size} bytes, the code expects {code.input_bytes}")
    out = np.empty(code.output_bytes, np.int8)
    hw = ffi.new("uint32_t *")
    rc = lib.msf_host_run(ffi.from_buffer("int8_t[]", data), ffi.from_buffer("int8_t[]", out),
                          hw, fill)
    if rc:
        raise HostFatal(rc)
    return out, int(hw[0])


def run_plan(model: Model, blocks: list[Block], x: np.ndarray) -> tuple[np.ndarray, int]:
    """Run a whole plan on the NHWC int8 input -> (output in the output's shape, arena
    high-water in bytes)."""
    code = generate_plan(model, blocks)
    out, hw = run_code(code, x)
    return out.reshape(model.tensor(model.output).shape), hw


def run_block(model: Model, block: Block, inputs: list[np.ndarray]) -> tuple[np.ndarray, int]:
    """Run one block as its own program: `inputs` are its input tensors (in
    BlockStructure.inputs order) -> (output tensor, arena high-water)."""
    code = generate_block(model, block)
    out, hw = run_code(code, np.concatenate([np.asarray(a, np.int8).ravel() for a in inputs]))
    return out.reshape(model.tensor(code.output).shape), hw
