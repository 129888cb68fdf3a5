"""The backend registry and board families as data: every face (CLI, doctor, platforms, runner,
Robot) reads the registry; boards and families are TOML that the code reads instead of
branching on names; platforms is data and imports neither the toolchain nor the backends."""
import ast
import dataclasses
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from msfsim import PACKAGE_DIR, platforms, sim, toolchain
from msfsim.cli import build_parser, main
from msfsim.deploy import has_dsp
from msfsim.sim import inventory
from msfsim.sim.base import FAULT_DECODERS, Backend, Measurement

SHIPPED = ("unicorn", "qemu", "renode")
BOARDS = platforms.available()


# ---------------------------------------------------------------- the registry

def test_registry_lists_the_shipped_backends_in_order():
    assert sim.backend_names()[:3] == SHIPPED
    for name in SHIPPED:
        b = sim.get_backend(name)
        assert isinstance(b, Backend) and b.name == name and b.summary
    assert not sim.get_backend("renode").tested


@pytest.mark.parametrize("board", BOARDS)
def test_every_backend_says_whether_it_can_run_every_board(board):
    p = platforms.load(board)
    for name in sim.backend_names():
        ok, why = sim.backend_available(name, p)
        assert isinstance(ok, bool) and (ok or why), (name, board)
        if not sim.get_backend(name).serves(p):
            assert not ok


def test_backend_files_are_discovered():
    """Each msfsim/sim/*_backend.py registers itself: one file is one backend."""
    files = {f.stem for f in (PACKAGE_DIR / "sim").glob("*" + sim.MODULE_SUFFIX + ".py")}
    modules = {type(sim.get_backend(n)).__module__.rsplit(".", 1)[-1] for n in SHIPPED}
    assert modules == files


def test_families_served_come_from_the_family_files():
    assert sim.families_served("unicorn") == ["cortex-m", "rv32"]  # no Xtensa model
    assert sim.families_served("qemu") == ["cortex-m", "lx106", "rv32"]
    assert sim.families_served("renode") == ["cortex-m", "rv32"]
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        sim.families_served("nope")


def test_default_backend_per_family():
    assert sim.default_backend() == "unicorn"
    assert sim.default_backend(platforms.load("stm32f746")) == "unicorn"
    assert sim.default_backend(platforms.load("hifive1b")) == "unicorn"
    assert sim.default_backend(platforms.load("esp32")) == "qemu"  # no unicorn model of Xtensa


def test_unicorn_version_is_what_baselines_record():
    import unicorn
    assert sim.backend_version("unicorn") == f"unicorn {unicorn.__version__}"


@pytest.mark.skipif(shutil.which("qemu-system-riscv32") is None, reason="qemu-system-misc not installed")
def test_qemu_version_is_its_first_line():
    line = subprocess.run(["qemu-system-riscv32", "--version"], capture_output=True,
                          text=True).stdout.splitlines()[0]
    assert sim.backend_version("qemu", platforms.load("hifive1b")) == line


def test_cli_backend_choices_are_the_registry():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.choices and "search" in a.choices)
    for cmd in ("search", "measure"):
        opt = next(a for a in sub.choices[cmd]._actions if "--backend" in a.option_strings)
        assert tuple(opt.choices) == sim.backend_names() and opt.default == sim.default_backend()
    run = next(a for a in sub.choices["run"]._actions if "--backend" in a.option_strings)
    assert tuple(run.choices) == ("host", *sim.backend_names())
    from msfsim.pipeline import runner
    assert runner.backend_names() == ("host", *sim.backend_names())


# ---------------------------------------------------------------- a backend of one's own

class FakeBackend(Backend):
    """What a new msfsim/sim/fake_backend.py would define (here without a file)."""
    name = "fake"
    summary = "a test double"
    order = 15

    def serves(self, platform):
        return platform.family == "cortex-m"

    def available(self, platform):
        return (True, "") if self.serves(platform) else (False, "fake models Cortex-M only")

    def run(self, elf, platform, budget_instructions=0, timeout_s=0.0):
        return Measurement(1, 0, 0, 0, 0, b"", "ok", "", self.name, elf.compiler, platform.label)

    def version(self, platform=None):
        return "fake 1.0"

    def doctor_rows(self):
        return [{"tool": "fake-emulator", "status": "ok", "detail": "test double",
                 "install": "nothing to install"}]


@pytest.fixture
def fake():
    sim.register(FakeBackend)
    yield FakeBackend
    sim.unregister("fake")
    assert "fake" not in sim.backend_names()


def test_registered_backend_appears_everywhere(fake, capsys):
    assert sim.backend_names() == (*SHIPPED[:2], "fake", SHIPPED[2])  # by `order`
    parser = build_parser()
    sub = next(a for a in parser._actions if a.choices and "search" in a.choices)
    opt = next(a for a in sub.choices["measure"]._actions if "--backend" in a.option_strings)
    assert "fake" in opt.choices
    args = parser.parse_args(["measure", "zoo:lenet5-r28", "--platform", "stm32f746", "--vanilla",
                              "--backend", "fake"])
    assert args.backend == "fake"
    assert main(["doctor", "--json"]) == 0
    rows = {r["tool"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["fake-emulator"]["detail"] == "test double" and "unicorn" in rows
    plat = {r["board"]: r["backends"] for r in inventory.describe()}
    assert "fake" in plat["stm32f746"] and "fake" not in plat["hifive1b"]
    assert sim.families_served("fake") == []  # no family file has [backends.fake]
    from msfsim.robotlib import MsfsimLibrary, backend_version
    MsfsimLibrary().require_backend("fake", "nucleo-f412zg")  # no skip, no failure
    assert backend_version("fake", "stm32f746") == "fake 1.0"


def test_register_refuses_bad_backends():
    with pytest.raises(TypeError):
        sim.register(dict)
    bad = type("Host", (FakeBackend,), {"name": "host"})
    with pytest.raises(ValueError, match="host"):
        sim.register(bad)
    clash = type("Other", (FakeBackend,), {"name": "unicorn"})
    with pytest.raises(ValueError, match="registered already"):
        sim.register(clash)
    assert type(sim.get_backend("unicorn")).__name__ == "UnicornBackend"


# ---------------------------------------------------------------- families as data

@pytest.mark.parametrize("board", BOARDS)
def test_every_board_has_a_complete_family_file(board):
    p = platforms.load(board)
    fam = p.family_info
    path = PACKAGE_DIR / "boards" / "families" / f"{p.family}.toml"
    assert path.is_file() and Path(fam.path) == path
    raw = tomllib.loads(path.read_text())
    for section, keys in platforms.FAMILY_KEYS.items():
        table = raw[section] if section else raw
        assert set(keys) <= set(table), (path, section)
    for f in toolchain.runtime_sources(p):
        assert f.is_file(), f
    assert toolchain.runtime_sources(p)[1].name == fam.startup
    assert fam.faults in FAULT_DECODERS
    assert set(fam.backends) <= set(sim.backend_names())
    assert sim.get_backend(fam.default_backend).serves(p)
    assert p.gcc == fam.gcc and p.gcc_package == fam.gcc_package
    text = json.dumps([p.gcc_flags, p.clang_flags, p.clang_target, p.backends])
    assert not re.search(r"@(core|CORE|arch)@", text)  # every board placeholder filled in


def test_family_files_are_shipped_as_package_data():
    assert "boards/families/*.toml" in toolchain.PACKAGE_DATA
    assert toolchain.missing_package_data() == []


@pytest.mark.parametrize("board", [b for b in BOARDS if "unicorn" in platforms.load(b).backends])
def test_unicorn_settings_name_real_models(board):
    import importlib

    from msfsim.sim.unicorn_backend import ARCHES
    cfg = platforms.load(board).backends["unicorn"]
    arch = ARCHES[cfg["arch"]]
    assert hasattr(importlib.import_module(f"unicorn.{arch.consts}"), cfg["cpu"])


def test_a_new_board_of_an_existing_family_is_one_file(tmp_path):
    """A Cortex-M33 board: the family fills in compiler flags, emulator models and runtime;
    the board file drops Renode and overrides the clang target."""
    path = tmp_path / "m33.toml"
    path.write_text('''
name = "m33"
board = "Some M33 board"
core = "cortex-m33"
arch = "armv8-m.main"
family = "cortex-m"
clock_hz = 100_000_000
features = ["dsp"]
[memory]
flash = { origin = 0x08000000, size = 0x80000 }
sram = { origin = 0x20000000, size = 0x20000 }
[link]
flash_origin = 0x0
sram_origin = 0x20000000
[compiler]
clang_target = "thumbv8m.main-none-eabi"
[backends]
renode = false
[backends.qemu]
machine = "mps2-an505"
''')
    p = platforms._parse(path)
    assert p.gcc == "arm-none-eabi-gcc" and p.gcc_flags[0] == "-mcpu=cortex-m33"
    assert p.clang_target == "thumbv8m.main-none-eabi"
    assert p.backends["unicorn"]["cpu"] == "UC_CPU_ARM_CORTEX_M33"
    assert p.backends["qemu"] == {**platforms.family("cortex-m").backends["qemu"],
                                  "cpu": "cortex-m33", "machine": "mps2-an505"}
    assert "renode" not in p.backends and has_dsp(p)
    assert toolchain.runtime_sources(p) == toolchain.runtime_sources(platforms.load("stm32f746"))


def test_bad_board_and_family_data_are_named(tmp_path):
    board = (PACKAGE_DIR / "boards" / "stm32f746.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(board.replace('family = "cortex-m"', 'family = "pdp11"'))
    with pytest.raises(platforms.PlatformError, match="unknown core family 'pdp11'.*cortex-m"):
        platforms._parse(bad)
    bad.write_text(board.replace('features = ["dsp"]', 'features = ["fpu64"]'))
    with pytest.raises(platforms.PlatformError, match="unknown feature"):
        platforms._parse(bad)
    fam = tmp_path / "fam.toml"
    fam.write_text('name = "fam"\ndescription = "x"\n')
    with pytest.raises(platforms.PlatformError, match="missing default_backend, faults"):
        platforms._parse_family(fam)


# ---------------------------------------------------------------- features

@pytest.mark.parametrize("board", BOARDS)
def test_has_dsp_follows_the_features(board):
    p = platforms.load(board)
    assert has_dsp(p) == ("dsp" in p.features)
    assert has_dsp(dataclasses.replace(p, features=frozenset({"dsp"})))
    assert not has_dsp(dataclasses.replace(p, features=frozenset()))


def test_dsp_boards_are_the_armv7em_ones():
    assert {b for b in BOARDS if "dsp" in platforms.load(b).features} == \
           {"stm32f746", "nucleo-f767zi", "nucleo-f412zg"}


@pytest.mark.parametrize("board", BOARDS)
def test_dsp_feature_matches_what_the_compiler_predefines(board):
    """A board lists "dsp" exactly when its compiler flags predefine the family's DSP macro
    (which the kernels test to pick their DSP loops)."""
    p = platforms.load(board)
    macro = p.family_info.dsp_macro
    if not macro:
        assert "dsp" not in p.features
        return
    if shutil.which(p.gcc) is None:
        pytest.skip(f"{p.gcc} not installed")
    out = subprocess.run([p.gcc, *p.gcc_flags, "-dM", "-E", "-x", "c", "/dev/null"],
                         capture_output=True, text=True, check=True).stdout
    assert (f"#define {macro} 1" in out) == ("dsp" in p.features)


# ---------------------------------------------------------------- imports

def _imports(module: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def test_platforms_is_data_and_toolchain_does_not_import_sim():
    """platforms -> (nothing of msfsim's stages); toolchain -> platforms; sim -> both."""
    assert not {n for n in _imports(PACKAGE_DIR / "platforms.py")
                if n.startswith(("msfsim.sim", "msfsim.toolchain"))}
    assert not {n for f in (PACKAGE_DIR / "toolchain").glob("*.py") for n in _imports(f)
                if n.startswith("msfsim.sim")}
    code = ("import sys, msfsim.toolchain; "
            "print(sorted(m for m in sys.modules if m.startswith('msfsim.sim')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"
