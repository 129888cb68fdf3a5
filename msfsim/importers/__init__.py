"""Model files -> msfsim's IR (`msfsim.ir`), through the op registry (`msfsim.ops`): each op
module registers the lowerings of the file format's ops that produce it.

- `msfsim.importers.onnx`: ONNX, float or QDQ int8 (`import_model`);
- `msfsim.importers.tflite`: int8 TensorFlow Lite (`import_tflite`), bit-exact with TensorFlow
  Lite Micro's reference kernels (docs/tflite.md); `tflm_arena_bytes` asks TFLM for its arena.
"""
