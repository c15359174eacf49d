"""Covers benchmarks/: the step benchmark's figures on a tiny configuration, compile counting, tables,
the full-size benchmark's data proportions and targets."""

import jax
import jax.numpy as jnp
import polars as pl
import pytest

from benchmarks.common import CompileCounter, table
from benchmarks.step_throughput import StepSpec, judge, measure


def test_compile_counter_sees_new_shapes_and_not_cache_hits():
    double = jax.jit(lambda x: 2 * x)
    x3, x4 = jnp.ones(3), jnp.ones(4)
    double(x3).block_until_ready()
    with CompileCounter() as hits:
        double(x3).block_until_ready()
    with CompileCounter() as misses:
        double(x4).block_until_ready()
    assert hits.count == 0 and misses.count >= 1


@pytest.mark.parametrize("placement", ["host", "device"])
def test_step_benchmark_on_a_tiny_window_reports_zero_recompiles_and_finite_rates(placement):
    r = measure(StepSpec(features=7, d_model=8, heads=2, eras=2, rows=16, repeats=2, placement=placement))
    assert r["recompiles"] == 0 and r["members"] == 2
    assert r["train_rows_per_s"] > 0 and r["predict_rows_per_s"] > 0 and r["step_flops"] > 0
    assert r["peak_rss_bytes"] >= r["rss_before_bytes"] > 0


def test_the_paired_placement_run_times_both_placements_in_one_process():
    from benchmarks.step_throughput import measure_pair

    pair = measure_pair(StepSpec(features=7, d_model=8, heads=2, eras=2, rows=16, repeats=2))
    assert pair["host_step_s"] > 0 and pair["device_step_s"] > 0
    assert pair["device_over_host"] == pytest.approx(pair["host_step_s"] / pair["device_step_s"])


def test_the_benchmarked_step_is_the_one_a_run_compiles():
    """One factory: the benchmark's step is `train.run.compiled`'s, for the run's own batch spec."""
    from benchmarks.step_throughput import build, run_config
    from dynjax.train.members import plan_members
    from dynjax.train.run import batch_specs

    spec = StepSpec(features=7, d_model=8, heads=2, eras=2, rows=16)
    fns, step = build(spec)[:2]
    cfg = run_config(spec)
    assert step is fns.steps[batch_specs(cfg, plan_members(cfg), False)[0]]


@pytest.mark.parametrize(("on_cpu", "rate", "met"), [(True, 31_000, True), (True, 29_000, False), (False, 29_000, True)])
def test_throughput_targets_apply_to_the_cpu_reference_only(on_cpu, rate, met):
    row = {"features": 705, "normalizer": "softmax", "d_model": 32, "train_rows_per_s": rate, "predict_rows_per_s": 4 * rate,
           "compile_s": 3.0, "recompiles": 0, "device_peak_bytes": None, "peak_rss_bytes": 2**30, "rss_before_bytes": 2**29}
    assert judge(row, on_cpu)["met"] is met


def test_accelerator_target_applies_to_device_placement_off_the_cpu():
    row = {"features": 705, "normalizer": "softmax", "d_model": 32, "train_rows_per_s": 9e6, "predict_rows_per_s": 4e7,
           "compile_s": 3.0, "recompiles": 0, "device_peak_bytes": 2**30, "peak_rss_bytes": 2**30, "rss_before_bytes": 2**29}
    assert judge(row | {"placement": "device"}, on_cpu=False)["targets"]["rows_per_s"] is False
    assert "rows_per_s" not in judge(row | {"placement": "host"}, on_cpu=False)["targets"]


def test_check_gates_the_exit_status_on_missed_targets(capsys):
    from benchmarks.common import gate

    assert gate(True, {"a": True, "b": False}, "x") == 1 and "missed b" in capsys.readouterr().err
    assert gate(False, {"b": False}, "x") == 0 and gate(True, {"a": True}, "x") == 0


def test_table_formats_missing_values_and_booleans():
    md = table([{"a": 1234.5, "b": None, "c": False}], [("A", "a", ",.0f"), ("B", "b", ""), ("C", "c", "")])
    assert md.splitlines()[-1] == "| 1,234 | - | NO |"


def test_full_scale_data_has_numerai_proportions_and_targets_judge_each_figure():
    from benchmarks.full_scale import judge, synth_config

    cfg = synth_config(2_750_000, None, 1200, 100)
    assert cfg.n_features == 3555 and cfg.layout == "v5.3" and synth_config(100_000, 2376, 1200, 100).n_features == 2376
    assert cfg.n_val_eras == 100 and cfg.n_train_eras + cfg.gap_eras + cfg.n_val_eras == 1200
    assert abs((cfg.n_train_eras + cfg.n_val_eras) * cfg.rows_per_era - 2_750_000) < 5_000
    row = {"peak_rss_bytes": 14, "int8_bytes": 10, "timings": {"checkpoint_s": 1.0}, "run_s": 100.0,
           "compiles_after_first_era": 0}
    assert judge(dict(row))["met"] and judge(dict(row))["rss_ratio"] == 1.4
    assert judge(row | {"peak_rss_bytes": 16})["targets"]["rss"] is False
    assert judge(row | {"compiles_after_first_era": 1})["targets"] == {"rss": True, "recompiles": False,
                                                                      "checkpoint": True, "minutes": True}


def test_the_suite_kills_a_benchmark_and_its_children_at_the_time_limit(tmp_path):
    """A benchmark past its limit goes with the children it started (they would hold the accelerator)."""
    import sys
    import time
    from pathlib import Path

    from benchmarks.__main__ import call

    pid_file = tmp_path / "child.pid"
    script = (f"import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
              f"open({str(pid_file)!r}, 'w').write(str(c.pid)); time.sleep(60)")
    start = time.perf_counter()
    assert call([sys.executable, "-c", script], timeout_s=3) == 124
    assert time.perf_counter() - start < 30
    status = Path(f"/proc/{pid_file.read_text()}/status")
    deadline = time.perf_counter() + 5
    while status.exists() and "zombie" not in status.read_text() and time.perf_counter() < deadline:
        time.sleep(0.1)
    assert not status.exists() or "zombie" in status.read_text()  # killed (a zombie awaits a reaper that is not us)
    assert call([sys.executable, "-c", "raise SystemExit(3)"], timeout_s=30) == 3


def test_the_walk_forward_benchmark_can_fit_lightgbm_once_without_the_refit(synth_dir):
    from benchmarks.walk_forward import run_lightgbm

    once = run_lightgbm(synth_dir, embargo=4, refit=False)
    assert "static" in once and "walk_forward" not in once
    assert once["static"]["wall_s"] > 0 and abs(once["static"]["scores"]["corr_mean"]) <= 1
    both = run_lightgbm(synth_dir, embargo=4)
    assert "walk_forward" in both


def test_the_device_suite_picks_its_entries_by_name(monkeypatch):
    import benchmarks.__main__ as suite

    ran = []
    monkeypatch.setattr(suite, "run", lambda name, args, timeout_s: ran.append((name, args)) or 0)
    monkeypatch.setattr("sys.argv", ["benchmarks", "--suite", "device", "--only", "walk_forward_diffuse"])
    assert suite.main() == 0
    assert [(name, args[:2]) for name, args in ran] == [("walk_forward", ["--setting", "diffuse"])]
    monkeypatch.setattr("sys.argv", ["benchmarks", "--suite", "device", "--only", "upload"])
    with pytest.raises(SystemExit):
        suite.main()


def test_time_to_quality_reads_the_runs_clock_and_scores_the_eras_predicted_so_far(tmp_path):
    import json

    from benchmarks.walk_forward import time_to_quality

    eras = [f"{e:04d}" for e in range(1, 46)]
    log = [{"phase": "pretrain", "time": 100.0}] + [{"phase": "walk", "era": e, "time": 110.0 + k} for k, e in enumerate(eras)]
    log.append({"phase": "walk", "era": "next", "time": 200.0})
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in log) + "\n")
    pl.DataFrame({"era": eras, "corr_dynjax": [0.1] * 20 + [0.3] * 25, "corr_frozen": [0.2] * 45}).write_csv(
        tmp_path / "metrics_per_era.csv")
    lgbm = {"static": {"wall_s": 9.0, "corr_E": dict.fromkeys(eras, 0.05)}}
    rows = time_to_quality({"out": str(tmp_path), "start": 100.0}, lgbm)
    assert [r["eras"] for r in rows] == [1, 20, 40, 45]
    assert rows[0]["wall_s"] == 10.0 and rows[-1]["wall_s"] == 54.0
    assert rows[1]["corr"] == pytest.approx(0.1) and rows[2]["corr"] == pytest.approx((20 * 0.1 + 20 * 0.3) / 40)
    assert rows[-1]["frozen_corr"] == pytest.approx(0.2) and rows[-1]["lightgbm_corr"] == pytest.approx(0.05)
    assert time_to_quality({"out": str(tmp_path), "start": 100.0}, None)[0]["lightgbm_corr"] is None
