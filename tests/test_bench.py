"""The benchmark runner: row shape, exact byte counts, the floors building
what the real clone builds, clean counters, and the CLI's JSON.  No timed
assertions: timings are the benchmark's output, not something to test."""

import json

import pytest
from ndisemu._native import ffi, lib

import ndisemu
from ndisemu import bench, cli

TINY = bench.Config(payloads=(1514,), mdls=(1,), nbs=(1,), batch_ms=0.2, repeats=1,
                    verifier_rows=True)


def counts(k):
    s = k.stats()
    return {key: s[key] for key in ("nbl", "nb", "mdl", "context", "memory", "data",
                                    "nbl_pool", "nb_pool", "pool_bytes_live")}


def by_op(rows, mode="native", verifier=False):
    return {r["op"]: r for r in rows if r["mode"] == mode and r["verifier"] == verifier}


def test_rows_have_every_key_and_exact_counts():
    rows = bench.measure_shape(bench.Shape(1514, 1, 1), TINY)
    assert len(rows) == (len(bench.OPS) * len(bench.MODES) + len(bench.VERIFIER_OPS) +
                         len(bench.HARNESS_OPS))
    for row in rows:
        assert set(row) == set(bench.ROW_KEYS)
        assert row["ns_min"] <= row["ns_per_op"] <= row["ns_max"]
        assert row["iterations"] >= 1 and row["repeats"] == 1
        assert row["data_bytes"] == 1514
    for mode in bench.MODES:
        ops = by_op(rows, mode)
        assert ops["deep_clone"]["bytes_copied"] == 1514
        assert ops["memcpy"]["bytes_copied"] == 1514
        for shallow in ("clone", "clone_original_mdls", "fwps_clone", "floor_clone"):
            assert ops[shallow]["bytes_copied"] == 0
        # the deep clone holds its own copy of the data; a shallow clone does not
        assert ops["deep_clone"]["pool_bytes"] > 1514 > ops["clone"]["pool_bytes"] > 0
        # sharing the original MDLs saves the partial MDL
        assert ops["clone_original_mdls"]["pool_bytes"] < ops["clone"]["pool_bytes"]
        assert ops["fwps_clone"]["pool_bytes"] == ops["clone"]["pool_bytes"]
    assert by_op(rows, "native", True).keys() == set(bench.VERIFIER_OPS)
    # the harness ops: python mode, the bytes they move and the pool bytes they take
    harness = {op: r for op, r in by_op(rows, "python").items() if op in bench.HARNESS_OPS}
    assert harness.keys() == set(bench.HARNESS_OPS)
    for op in bench.SHAPE_FREE_OPS:
        assert (harness[op]["bytes_copied"], harness[op]["pool_bytes"]) == (0, 0)
    for op in ("build_free", "nbl_bytes", "read"):
        assert harness[op]["bytes_copied"] == 1514
    assert harness["build_free"]["pool_bytes"] > 1514 and harness["read"]["pool_bytes"] == 0


def test_byte_counts_scale_with_nbs_and_mdls():
    config = bench.Config(batch_ms=0.1, repeats=1, verifier_rows=False, modes=("native",))
    ops = by_op(bench.measure_shape(bench.Shape(1514, 4, 8), config))
    assert ops["deep_clone"]["bytes_copied"] == 8 * 1514
    assert ops["memcpy"]["bytes_copied"] == 8 * 1514
    assert ops["clone"]["bytes_copied"] == 0
    imix = by_op(bench.measure_shape(bench.Shape("imix", 1, 12), config))
    assert imix["deep_clone"]["bytes_copied"] == sum(bench.IMIX) == 7 * 64 + 4 * 594 + 1518
    assert imix["deep_clone"]["payload"] == "imix" and imix["deep_clone"]["nbs"] == 12


def test_same_seed_same_byte_counts():
    config = bench.Config(batch_ms=0.1, repeats=1, verifier_rows=False)

    def exact(seed):
        config.seed = seed
        rows = bench.measure_shape(bench.Shape(9000, 4, 2), config)
        return [(r["op"], r["mode"], r["bytes_copied"], r["pool_bytes"]) for r in rows]
    assert exact(3) == exact(3)


@pytest.mark.parametrize("shape", [bench.Shape(64, 1, 1), bench.Shape(1514, 4, 8),
                                   bench.Shape(9000, 16, 2), bench.Shape(65536, 4, 1),
                                   bench.Shape(64, 16, 1), bench.Shape("imix", 1, 12)])
def test_floor_clone_builds_what_the_clone_builds(shape):
    with bench.Bench(shape) as b:
        assert b.mdl_counts() == [shape.mdls] * shape.nbs
        clone = b.native_report("clone")
        floor = b.native_report("floor_clone")
        assert (floor["nbs"], floor["mdls"], floor["mdl_bytes"]) == \
            (clone["nbs"], clone["mdls"], clone["mdl_bytes"])
        assert clone["nbs"] == shape.nbs and clone["mdls"] == shape.nbs * shape.mdls
        assert clone["mdl_bytes"] == b.data_bytes
        fwps = b.native_report("fwps_clone")
        assert (fwps["nbs"], fwps["mdls"]) == (clone["nbs"], clone["mdls"])
        shared = b.native_report("clone_original_mdls")
        assert (shared["nbs"], shared["mdls"], shared["mdl_bytes"]) == (shape.nbs, 0, 0)
        deep = b.native_report("deep_clone")
        assert (deep["nbs"], deep["mdls"], deep["bytes_copied"]) == \
            (shape.nbs, shape.nbs, b.data_bytes)
        # the floor fills the structures without pool headers or bookkeeping
        assert 0 < floor["block_bytes"] < clone["block_bytes"]


def test_native_report_matches_public_api_stats():
    with bench.Bench(bench.Shape(1514, 4, 2)) as b:
        for op in bench.OPS:
            copied, pool_bytes = b.exact(op)   # raises if C and the public API disagree
            report = b.native_report(op)
            assert (copied, pool_bytes) == (report["bytes_copied"], report["block_bytes"])


@pytest.mark.parametrize("verifier", [False, True])
def test_native_loops_leave_counts_unchanged(verifier):
    with bench.Bench(bench.Shape(1514, 4, 8), verifier=verifier) as b:
        before = counts(b.k)
        for op in bench.OPS:
            b.k._check("bench", lib.ndisemu_bench_run(b.b, bench._OP_CODES[op], 50, ffi.NULL))
            assert counts(b.k) == before, op
            for mode in bench.MODES:
                b.batch(op, mode)(3)
                assert counts(b.k) == before, (op, mode)
        assert b.orig.ChildRefCount == 0
        k = b.k
    assert {key: v for key, v in counts(k).items() if key != "pool_bytes_live"} == \
        dict.fromkeys(("nbl", "nb", "mdl", "context", "memory", "data", "nbl_pool",
                       "nb_pool"), 0)


def test_unknown_op_and_bad_original_are_bug_checks():
    with bench.Bench(bench.Shape(64, 1, 1)) as b:
        with pytest.raises(ndisemu.BugCheck):
            b.k._check("bench", lib.ndisemu_bench_run(b.b, 99, 1, ffi.NULL))
        assert lib.ndisemu_bench_run(b.b, 99, 0, ffi.NULL) == 0   # 0 iterations: a bare call
        k = b.k
        nbl = k.build_nbl(b.pool, [b"x" * 10])
        k.free_built(nbl)
        out = ffi.new("ndisemu_bench **")
        assert lib.ndisemu_bench_prepare(k._k, nbl, k.default_nbl_pool, k.default_nb_pool,
                                         out) == lib.NDISEMU_BUGCHECK
        assert out[0] == ffi.NULL


def test_summary_ratios():
    def row(op, payload, ns, mode="native"):
        return {"op": op, "mode": mode, "verifier": False, "payload": payload, "mdls": 1,
                "nbs": 1, "ns_per_op": ns}
    rows = [row("clone", 64, 100), row("clone", 65536, 120), row("floor_clone", 64, 50),
            row("floor_clone", 65536, 20), row("deep_clone", 65536, 3000),
            row("memcpy", 65536, 2000), row("clone", 64, 900, "python")]
    summary = bench.summarize(rows, 80.0)
    targets = {t["name"]: t for t in summary["targets"]}
    assert targets["shallow clone 64 KiB / 64 B (native)"]["worst"] == 1.2
    floor = targets["native clone / floor_clone"]
    assert (floor["worst"], floor["worst_shape"]["payload"], floor["met"]) == (6.0, 65536, False)
    assert targets["native deep clone 64 KiB / memcpy 64 KiB"]["worst"] == 1.5
    assert targets["deep clone 64 KiB / shallow clone 64 KiB (native)"]["worst"] == 25.0
    (overhead,) = summary["python_overhead"]
    assert overhead["overhead_ns_per_call"] == 400.0 and overhead["ratio"] == 9.0
    assert summary["cffi_call_ns"] == 80.0


def test_harness_ops_run_where_the_config_says():
    def harness_at(config, shape):
        with bench.Bench(shape) as b:
            return {row.op for row in bench._plan(b, config) if row.op in bench.HARNESS_OPS}
    quick = bench.Config.quick_run()
    quick.batch_ms, quick.verifier_rows, quick.ops = 0.05, False, bench.HARNESS_OPS
    assert harness_at(quick, bench.Shape(1514, 1, 1)) == set(bench.HARNESS_OPS)
    assert harness_at(quick, bench.Shape(64, 1, 1)) == set()
    full = bench.Config(payloads=(64, 1514), mdls=(1, 4), nbs=(1,), batch_ms=0.05,
                        verifier_rows=False, ops=bench.HARNESS_OPS)
    assert bench.reference_shape(full) == bench.Shape(1514, 1, 1)
    assert harness_at(full, bench.Shape(1514, 1, 1)) == set(bench.HARNESS_OPS)
    assert harness_at(full, bench.Shape(64, 4, 1)) == \
        set(bench.HARNESS_OPS) - set(bench.SHAPE_FREE_OPS)


def test_summary_answers_first_deep_vs_shallow_then_the_harness():
    def row(op, payload, mdls, ns, mode="native", verifier=False):
        return {"op": op, "mode": mode, "verifier": verifier, "payload": payload,
                "mdls": mdls, "nbs": 1, "ns_per_op": ns}
    rows = [row("clone_original_mdls", 64, 1, 50), row("clone", 64, 1, 100),
            row("deep_clone", 64, 1, 150), row("clone", 1514, 1, 100),
            row("deep_clone", 1514, 1, 300), row("clone", 1514, 4, 200),
            row("deep_clone", 1514, 4, 300), row("floor_clone", 1514, 1, 40),
            row("clone", 1514, 1, 160, verifier=True),
            row("raw_read", 1514, 1, 50, "python"), row("view_read", 1514, 1, 150, "python"),
            row("cffi_call", 1514, 1, 100, "python"),
            row("build_free", 1514, 1, 900, "python"), row("build_free", 1514, 4, 1200, "python"),
            row("build_free", 1514, 16, 2400, "python"),
            row("nbl_bytes", 1514, 1, 500, "python")]
    summary = bench.summarize(rows, 100.0)
    by_payload = {e["payload"]: e for e in summary["clones"]["by_payload"]}
    assert (by_payload[64]["deep_vs_clone"], by_payload[64]["clone_vs_original_mdls"],
            by_payload[64]["deep_vs_original_mdls"]) == (1.5, 2.0, 3.0)
    assert by_payload[1514]["deep_vs_clone"] == 3.0
    assert by_payload[1514]["clone_vs_original_mdls"] is None      # not measured
    assert [(e["mdls"], e["deep_vs_clone"]) for e in summary["clones"]["by_mdls"]] == \
        [(1, 3.0), (4, 1.5)]
    harness = summary["harness"]
    assert harness["view_read_vs_raw_read"] == 3.0
    assert [(e["mdls"], e["vs_cffi_call"]) for e in harness["build_free"]] == \
        [(1, 9.0), (4, 12.0), (16, 24.0)]
    targets = {t["name"]: t for t in summary["targets"]}
    assert targets["view_read / raw_read"]["met"]
    assert targets["build_free / cffi_call (1514 B, 1 MDL, 1 NB)"]["worst"] == 9.0
    # one more MDL costs 100 ns from 1 to 4 MDLs and 100 ns from 4 to 16: linear
    assert targets["build_free per extra MDL, last step / on average (1514 B, 1 NB)"][
        "worst"] == 1.0
    assert not targets["nbl_bytes / cffi_call (1514 B, 1 MDL, 1 NB)"]["met"]     # 5.0
    assert targets["native clone with the verifier / floor_clone"]["worst"] == 4.0
    assert summary["verifier"] == [{"op": "clone", "payload": 1514, "on_ns": 160,
                                    "off_ns": 100, "ratio": 1.6}]
    result = {"machine": {"cpu_model": "cpu", "python": "py"}, "rows": [], "summary": summary}
    text = bench.table(result)
    assert text.startswith("Deep clone vs clone vs clone on the original MDLs")
    assert text.index("view_read") < text.index("Every row")
    assert "README" in text.splitlines()[-1]


def test_cli_quick_json(capsys):
    assert cli.main(["bench", "--quick", "--json", "--payloads", "64,imix", "--batch-ms", "0.2",
                     "--repeats", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) >= {"machine", "rows"}
    assert result["machine"]["quick"] is True and result["machine"]["cpu_count"] >= 1
    assert {(r["payload"], r["mdls"], r["nbs"]) for r in result["rows"]} == \
        {(64, 1, 1), ("imix", 1, 12)}
    assert {r["op"] for r in result["rows"]} == set(bench.ALL_OPS)
    assert all(r["repeats"] == 2 for r in result["rows"])
    # without 1514 B in the matrix the harness ops run at its first shape only
    assert {(r["payload"], r["mode"]) for r in result["rows"]
            if r["op"] in bench.HARNESS_OPS} == {(64, "python")}


def test_cli_table_json_out_and_plot(tmp_path, capsys):
    out, png = tmp_path / "r.json", tmp_path / "p.png"
    assert cli.main(["bench", "--payloads", "64,1514", "--mdls", "1,4", "--nbs", "1",
                     "--ops", "clone,floor_clone", "--batch-ms", "0.1", "--repeats", "1",
                     "--no-verifier-rows", "--json-out", str(out), "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "floor_clone" in text and "ns/op" in text
    assert len(json.loads(out.read_text())["rows"]) == 2 * 2 * 2 * 2
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_rejects_bad_lists():
    with pytest.raises(SystemExit):
        cli.main(["bench", "--ops", "nope"])
    with pytest.raises(SystemExit):
        cli.main(["bench", "--mdls", "0"])
