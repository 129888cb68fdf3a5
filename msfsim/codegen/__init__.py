"""Code generation: a plan or a single block -> `msf_generated.{h,c}` and `msf_input.c`."""
from msfsim.codegen.emit import GeneratedCode, generate_block, generate_plan

__all__ = ["GeneratedCode", "generate_block", "generate_plan"]
