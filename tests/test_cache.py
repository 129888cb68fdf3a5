import multiprocessing as mp

from msfsim.cache import MeasurementCache, make_key


def test_key_depends_on_every_part_and_not_on_order():
    a = make_key(compiler="gcc 12.2", flags="-O2", elf="abc", backend="unicorn")
    assert a == make_key(backend="unicorn", elf="abc", flags="-O2", compiler="gcc 12.2")
    assert a != make_key(compiler="gcc 12.2", flags="-O3", elf="abc", backend="unicorn")
    assert a != make_key(compiler="gcc 12.2", flags="-O2", elf="abc", backend="qemu")


def test_roundtrip_and_persistence(tmp_path):
    with MeasurementCache(tmp_path) as c:
        assert c.get("k") is None
        c.put("k", {"instructions": 123, "stack_peak": 40})
    with MeasurementCache(tmp_path) as c:
        assert c.get("k") == {"instructions": 123, "stack_peak": 40}
        assert (c.hits, c.misses, len(c)) == (1, 0, 1)


def _writer(args):
    directory, start = args
    with MeasurementCache(directory) as c:
        for i in range(start, start + 200):
            c.put(f"k{i}", {"i": i})
    return True


def test_concurrent_writers(tmp_path):
    with mp.get_context("spawn").Pool(4) as pool:
        assert all(pool.map(_writer, [(str(tmp_path), s) for s in (0, 100, 200, 300)]))
    with MeasurementCache(tmp_path) as c:
        assert len(c) == 500
        assert all(c.get(f"k{i}") == {"i": i} for i in range(500))
