"""The fused-block executor on the host: every scheme and tile gives the layer-by-layer result
bit-exactly (== msfsim.refmodel), the arena high-water equals exact.block_cost's act_io and the
MACs the kernels run equal exact.block_cost's MACs."""
from __future__ import annotations

import numpy as np
import pytest

from msfsim import host, host_build, refmodel
from msfsim.fusion.block import Block, BlockConfig, BlockInfeasible
from msfsim.fusion.exact import block_cost, plan_cost
from msfsim.fusion.geometry import block_structure
from msfsim.fusion.memplan import block_plan, plan_layout
from msfsim.host import HostFatal, run_block, run_code, run_plan
from msfsim.codegen import generate_block, generate_plan
from msfsim.ir import IRBuilder, Model, QParams, conv_pad

SCHEMES = ("recompute", "hcache", "stream2d")


class Net:
    """IRBuilder with random int8 weights scaled so that outputs spread over the int8 range."""

    def __init__(self, name: str, shape, seed: int):
        self.rng = np.random.default_rng(seed)
        self.b = IRBuilder(name, shape, self.q())

    def q(self) -> QParams:
        return QParams(float(self.rng.uniform(0.02, 0.08)), int(self.rng.integers(-20, 20)))

    def conv(self, x, cout, k, s=1, dw=False, act="relu6", pad=None):
        h, w, cin = self.b.tensors[x].shape
        shape = (k, k, cin) if dw else (cout, k, k, cin)
        fan_in = k * k * (1 if dw else cin)
        if pad is None:
            ph, pw = conv_pad(h, k, s), conv_pad(w, k, s)
            pad = (ph[0], pw[0], ph[1], pw[1])
        wq = self.rng.integers(-127, 128, size=shape).astype(np.int8)
        scale = np.full(shape[-1] if dw else cout, 2.0 / (127 * np.sqrt(fan_in)))
        bias = self.rng.normal(0, 0.5, size=shape[-1] if dw else cout)
        return self.b.conv(x, wq, scale, bias, self.q(), stride=(s, s), pad=pad, depthwise=dw,
                           activation=act)

    def add(self, a, c):
        return self.b.add(a, c, self.q(), activation="relu")

    def dense(self, x, cout):
        n = self.b.tensors[x].size
        wq = self.rng.integers(-127, 128, size=(cout, n)).astype(np.int8)
        return self.b.dense(x, wq, np.full(cout, 2.0 / (127 * np.sqrt(n))), None, self.q())

    def build(self) -> Model:
        return self.b.build()


def chain_net() -> Model:
    """k 3/5/7, strides 1/2, odd sizes, asymmetric and explicit paddings, pools."""
    n = Net("chain", (19, 17, 3), 1)
    x = n.conv(n.b.input, 8, 3, 2)                     # 0: 10x9
    x = n.conv(x, 0, 5, 1, dw=True)                    # 1
    x = n.conv(x, 6, 1)                                # 2
    x = n.conv(x, 0, 7, 1, dw=True, pad=(2, 3, 4, 1))  # 3: explicit asymmetric padding
    x = n.conv(x, 8, 3, 1, act="none")                 # 4
    x = n.b.pool(x, "max", (3, 3), (2, 2), (1, 1, 1, 1))  # 5
    x = n.b.pool(x, "avg", (2, 2), (1, 1), (0, 0, 1, 1), out_q=n.q())  # 6
    n.conv(x, 5, 3, 2)                                 # 7
    return n.build()


def residual_net() -> Model:
    """MobileNetV2 residual (add inside a block) and a ResNet shortcut conv on the block input."""
    n = Net("residual", (13, 11, 4), 2)
    x = n.conv(n.b.input, 8, 3, 1)                     # 0
    y = n.conv(x, 16, 1)                               # 1 expand
    y = n.conv(y, 0, 3, 1, dw=True)                    # 2
    y = n.conv(y, 8, 1, act="none")                    # 3 project
    x = n.add(y, x)                                    # 4: x is produced before the block
    y = n.conv(x, 8, 3, 2)                             # 5
    y = n.conv(y, 8, 3, 1, act="none")                 # 6
    sc = n.conv(x, 8, 1, 2, act="none")                # 7 shortcut conv on the block input
    n.add(y, sc)                                       # 8: both operands inside
    return n.build()


def tail_net() -> Model:
    """Spatial layers, then an iterative tail: gap -> dense."""
    n = Net("tail", (11, 9, 3), 3)
    x = n.conv(n.b.input, 8, 3, 2)                     # 0
    x = n.conv(x, 0, 3, 1, dw=True)                    # 1
    g = n.b.gap(x, n.q())                              # 2
    n.dense(g, 6)                                      # 3
    return n.build()


def flat_net() -> Model:
    """A dense layer over a flattened spatial tensor."""
    n = Net("flat", (9, 7, 3), 4)
    x = n.conv(n.b.input, 6, 3, 2)                     # 0
    x = n.conv(x, 4, 1, act="none")                    # 1
    n.dense(x, 7)                                      # 2: dense over 5x4x4
    return n.build()


def random_input(model: Model, seed: int = 0) -> np.ndarray:
    shape = model.tensor(model.input).shape
    return np.random.default_rng(seed).integers(-128, 128, size=shape, dtype=np.int8)


def run_counting(code, x: np.ndarray) -> tuple[np.ndarray, int, int]:
    """host.run_code with the executor's MAC counter compiled in -> (output, arena high-water,
    MACs the kernels ran)."""
    gen = host._sources_dir(code)
    sources = sorted((host.KERNELS_C / "kernels").glob("*.c")) + [
        host.KERNELS_C / "msf_arena.c", host.KERNELS_C / "msf_executor.c", gen / "msf_generated.c"]
    ffi, lib = host_build.build(
        "plan_macs", sources, host.CDEF + "uint64_t msf_host_macs(void);\n",
        include_dirs=[host.KERNELS_C, gen], headers=["msf_generated.h"],
        preamble=host.HARNESS + "extern uint64_t msf_exec_macs;\n"
                 "uint64_t msf_host_macs(void) { return msf_exec_macs; }\n",
        extra_compile_args=["-DMSF_EXEC_COUNT_MACS"])
    data = np.ascontiguousarray(np.asarray(x, np.int8).ravel())
    out = np.empty(code.output_bytes, np.int8)
    hw = ffi.new("uint32_t *")
    before = lib.msf_host_macs()
    rc = lib.msf_host_run(ffi.from_buffer("int8_t[]", data), ffi.from_buffer("int8_t[]", out),
                          hw, host.ARENA_FILL)
    if rc:
        raise HostFatal(rc)
    return out, int(hw[0]), int(lib.msf_host_macs() - before)


def check_block(model: Model, block: Block, values: dict[int, np.ndarray]) -> None:
    st = block_structure(model, block.first, block.last)
    code = generate_block(model, block)
    out, high_water, macs = run_counting(code, np.concatenate(
        [values[t].ravel() for t in st.inputs]))
    np.testing.assert_array_equal(out.reshape(values[st.output].shape), values[st.output],
                                  err_msg=block.key)
    cost = block_cost(model, block)
    assert high_water == cost.act_io, block.key
    assert macs == cost.macs, block.key


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("tile", [(1, 1), (2, 3), (4, 2)])
def test_chain_block_bit_exact(scheme, tile):
    m = chain_net()
    values = refmodel.run_layers(m, random_input(m))
    check_block(m, Block(0, len(m.layers) - 1, BlockConfig(tile, scheme)), values)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("first,last,tile", [(1, 4, (2, 2)), (5, 8, (1, 2)), (0, 8, (3, 1))])
def test_residual_blocks_bit_exact(scheme, first, last, tile):
    m = residual_net()
    values = refmodel.run_layers(m, random_input(m, 1))
    check_block(m, Block(first, last, BlockConfig(tile, scheme)), values)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("make,first,last,tile", [(tail_net, 0, 3, (2, 2)), (tail_net, 1, 2, (3, 1)),
                                                  (flat_net, 0, 2, (1, 3))])
def test_tail_blocks_bit_exact(scheme, make, first, last, tile):
    m = make()
    values = refmodel.run_layers(m, random_input(m, 2))
    check_block(m, Block(first, last, BlockConfig(tile, scheme)), values)


def test_live_skip_tensor_is_held_in_the_arena():
    m = residual_net()
    values = refmodel.run_layers(m, random_input(m, 1))
    block = Block(2, 3, BlockConfig((2, 2), "hcache"))   # x (tensor 1) lives across it
    assert block_structure(m, 2, 3).skips == (1,)
    check_block(m, block, values)
    out, high_water = run_block(m, block, [values[t] for t in block_structure(m, 2, 3).inputs])
    np.testing.assert_array_equal(out, values[m.layers[3].output])
    assert high_water == block_cost(m, block).act_io


HC, S2, RC = "hcache", "stream2d", "recompute"
FUSED = {"chain": [Block(0, 3, BlockConfig((2, 2), HC)), Block(4, 7, BlockConfig((1, 3), S2))],
         "residual": [Block(0, 4, BlockConfig((2, 2), HC)), Block(5, 8, BlockConfig((1, 3), S2))],
         "tail": [Block(0, 0), Block(1, 3, BlockConfig((2, 2), RC))],
         "flat": [Block(0, 2, BlockConfig((2, 1), HC))]}


@pytest.mark.parametrize("make", [chain_net, residual_net, tail_net, flat_net])
def test_plans_equal_reference(make):
    m = make()
    x = random_input(m, 5)
    ref = refmodel.run(m, x)
    n = len(m.layers)
    vanilla = [Block(i, i) for i in range(n)]
    out, hw = run_plan(m, vanilla, x)
    np.testing.assert_array_equal(out, ref)
    assert hw == plan_layout(m, vanilla).arena_bytes
    assert hw >= plan_cost(m, vanilla).act_io
    fused = FUSED[m.name]
    out, hw = run_plan(m, fused, x)
    np.testing.assert_array_equal(out, ref)
    assert hw == plan_layout(m, fused).arena_bytes


def test_arena_overflow_reaches_python_as_host_fatal():
    m = chain_net()
    code = generate_plan(m, [Block(i, i) for i in range(len(m.layers))])
    small = code.files["msf_generated.h"].replace(
        f"#define MSF_ARENA_BYTES {code.arena_bytes}u", f"#define MSF_ARENA_BYTES {code.arena_bytes - 4}u")
    assert small != code.files["msf_generated.h"]
    broken = type(code)({**code.files, "msf_generated.h": small}, code.arena_bytes - 4,
                        code.input_bytes, code.output_bytes, code.inputs, code.output)
    with pytest.raises(HostFatal) as exc:
        run_code(broken, random_input(m))
    assert exc.value.code == 1  # MSF_FATAL_ARENA_OVERFLOW


def pool_net() -> Model:
    """Convs each followed by a max pool whose stride covers its window (2x2 s2, 3x3 s3 on an
    odd size)."""
    n = Net("pool", (15, 13, 3), 6)
    x = n.conv(n.b.input, 6, 3, 1)                     # 0
    x = n.b.pool(x, "max", (2, 2), (2, 2))             # 1: 7x6
    x = n.conv(x, 5, 1, act="none")                    # 2 (1x1 conv: im2col path of the fused kernel)
    n.b.pool(x, "max", (3, 3), (3, 3))                 # 3: 2x2
    return n.build()


@pytest.mark.parametrize("first", [0, 2])
def test_max_pool_in_place_into_its_conv(first):
    m = pool_net()
    values = refmodel.run_layers(m, random_input(m, 7))
    block = Block(first, first + 1)
    check_block(m, block, values)
    conv_out = m.tensor(m.layers[first].output)
    assert f"region:{conv_out.name}" not in block_cost(m, block).buffers  # never stored
    x = random_input(m, 8)
    out, _ = run_plan(m, [Block(0, 1), Block(2, 3)], x)
    np.testing.assert_array_equal(out, refmodel.run(m, x))


def random_chain(seed: int) -> Model:
    """A random net: odd sizes, kernels 3/5/7, strides 1/2, SAME and explicit paddings,
    MobileNetV2 residual adds, max/avg pools, and a gap -> dense tail half of the time."""
    n = Net(f"random{seed}", (int(np.random.default_rng(seed).integers(11, 24)),
                               int(np.random.default_rng(seed + 99).integers(9, 22)), 3), seed)
    r = n.rng
    x = n.conv(n.b.input, int(r.integers(4, 9)), int(r.choice([3, 5])), int(r.choice([1, 2])))
    for _ in range(int(r.integers(2, 5))):
        kind = r.choice(["mb", "conv", "pool"])
        h, w, c = n.b.tensors[x].shape
        k = int(r.choice([3, 5, 7]))
        if kind == "mb":
            y = n.conv(x, 2 * c, 1)
            y = n.conv(y, 0, k, 1, dw=True)
            x = n.add(n.conv(y, c, 1, act="none"), x)
        elif kind == "conv" and min(h, w) >= 5:
            pad = None if r.random() < 0.5 else tuple(int(v) for v in r.integers(0, k // 2 + 1, 4))
            x = n.conv(x, int(r.integers(3, 9)), k, int(r.choice([1, 2])), dw=bool(r.random() < 0.5),
                       pad=pad)
        elif min(h, w) >= 3:
            x = n.b.pool(x, str(r.choice(["max", "avg"])), (3, 3), (2, 2), (1, 1, 1, 1),
                         out_q=n.q())
    if r.random() < 0.5:
        n.dense(n.b.gap(x, n.q()), 5)
    return n.build()


@pytest.mark.parametrize("seed", range(6))
def test_hcache_random_nets_bit_exact(seed):
    m = random_chain(seed)
    values = refmodel.run_layers(m, random_input(m, seed))
    rng = np.random.default_rng(seed)
    st = block_structure(m, 0, len(m.layers) - 1)
    oh, ow, _ = m.tensor(st.star_out).shape
    for tile in {(1, 1), (int(rng.integers(1, oh + 1)), int(rng.integers(1, ow + 1)))}:
        check_block(m, Block(0, len(m.layers) - 1, BlockConfig(tile, "hcache")), values)
    # a block starting inside the net: its warm-up is its own
    first = len(m.layers) // 2
    try:
        block_structure(m, first, len(m.layers) - 1)
    except BlockInfeasible:
        return
    check_block(m, Block(first, len(m.layers) - 1, BlockConfig((1, 2), "hcache")), values)


def pointwise_chain_net() -> Model:
    """MobileNet-like: pointwise convs between depthwise ones, so hcache's one-column caches
    take turns in shared slots (memplan.share_transient_caches)."""
    n = Net("pwchain", (21, 19, 3), 7)
    x = n.conv(n.b.input, 6, 3, 2)                     # 0: read by a pw: transient
    x = n.conv(x, 9, 1)                                # 1: read by a dw: 3 columns
    x = n.conv(x, 0, 3, 1, dw=True)                    # 2: transient
    x = n.conv(x, 5, 1, act="none")                    # 3: transient, fed by one
    x = n.conv(x, 12, 1)                               # 4: read by a dw
    x = n.conv(x, 0, 3, 2, dw=True)                    # 5: transient
    n.conv(x, 7, 1, act="none")                        # 6
    return n.build()


@pytest.mark.parametrize("tile", [(1, 1), (2, 1), (3, 2), (4, 1)])
def test_hcache_shared_slots_bit_exact(tile):
    m = pointwise_chain_net()
    values = refmodel.run_layers(m, random_input(m, 4))
    block = Block(0, len(m.layers) - 1, BlockConfig(tile, "hcache"))
    if tile[1] == 1:   # the star's input is transient only when it takes one column at a time
        assert any(b.slot >= 0 for b in block_plan(m, block).buffers)
    check_block(m, block, values)
    check_block(m, Block(2, len(m.layers) - 1, BlockConfig(tile, "hcache")), values)
