import pickle

import pytest

from msfsim import platforms

KB, MB = 1024, 1024 * 1024
DATASHEET = {  # DESIGN §6: core, SRAM, flash, clock
    "stm32f746": ("cortex-m7", 320 * KB, 1 * MB, 216_000_000),
    "nucleo-f767zi": ("cortex-m7", 512 * KB, 2 * MB, 216_000_000),
    "nucleo-f412zg": ("cortex-m4", 256 * KB, 1 * MB, 100_000_000),
    "hifive1b": ("sifive-e31", 16 * KB, 4 * MB - 64 * KB, 320_000_000),  # 64 KB boot loader
    "esp32c3": ("esp32c3", 400 * KB, 4 * MB, 160_000_000),
    "esp32": ("xtensa-lx6", 520 * KB, 4 * MB, 240_000_000),
}


def test_every_board_file_loads():
    assert sorted(DATASHEET) == platforms.available()


@pytest.mark.parametrize("name", sorted(DATASHEET))
def test_datasheet_values(name):
    p = platforms.load(name)
    core, sram, flash, clock = DATASHEET[name]
    assert (p.core, p.sram.size, p.flash.size, p.clock_hz) == (core, sram, flash, clock)
    assert p.link_sram.size == sram and p.link_flash.size == flash


def test_unknown_board_lists_known_ones():
    with pytest.raises(platforms.PlatformError) as e:
        platforms.load("stm32f999")
    for name in DATASHEET:
        assert name in str(e.value)


def test_esp32_is_a_labelled_lx106_proxy():
    p = platforms.load("esp32")
    assert p.proxy and p.proxy_core == "xtensa-lx106" and "proxy" in p.label
    assert "unicorn" not in p.backends
    assert not platforms.load("esp32c3").proxy


def test_platform_pickles_by_name():
    p = platforms.load("hifive1b")
    assert pickle.loads(pickle.dumps(p)) == p


def test_describe_rows():
    from msfsim.sim import inventory
    rows = {r["board"]: r for r in inventory.describe()}
    assert rows["stm32f746"]["sram"] == "320 KB" and rows["stm32f746"]["clock"] == "216 MHz"
    esp32 = next(r for b, r in rows.items() if b.startswith("esp32 "))
    assert "proxy" in esp32["board"] and "lx106" in esp32["core"]
    assert "unicorn" not in esp32["backends"]
