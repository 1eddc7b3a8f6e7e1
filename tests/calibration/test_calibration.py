"""The committed calibration is what the fit produces, and it reproduces the seed."""

import math

import pytest
import yaml

from migrc_sweep import calibrate, seed_table


@pytest.fixture(scope="module")
def fresh():
    values = calibrate.fit()
    return values, calibrate.compare(values, seeds=(0, 1))


@pytest.fixture(scope="module")
def committed():
    return yaml.safe_load(calibrate.default_path().read_text())


def test_committed_file_matches_a_fresh_fit(fresh, committed):
    values, _ = fresh
    for key, val in values.items():
        group, name = key.split(".")
        assert committed[group][name] == pytest.approx(val, rel=0.03), key


def test_fitted_values_lie_in_their_physical_ranges(fresh, committed):
    values, _ = fresh
    assert calibrate.check_ranges(values) == []
    for key, rng in committed["ranges"].items():
        group, name = key.split(".")
        assert rng["lo"] <= committed[group][name] <= rng["hi"], key


def test_fresh_fit_reproduces_the_seed_table(fresh):
    _, table = fresh
    by = {r["metric"]: r for r in table}
    for metric, row in by.items():
        if metric in ("runtime_s", "throughput_per_s"):
            continue
        assert abs(row["sim_change_pct"] - row["measured_change_pct"]) <= 5.0, metric
    assert abs(by["runtime_s"]["sim_change_pct"] - by["runtime_s"]["measured_change_pct"]) <= 1.0
    for i in (0, 1):
        sim_tp = by["throughput_per_s"]["sim_before" if i == 0 else "sim_after"]
        assert sim_tp == pytest.approx(seed_table.MEASURED["throughput_per_s"][i], rel=0.03)


def test_a_fit_outside_its_range_is_refused():
    bad = calibrate.check_ranges({"machine.walk_2d_factor": 9.0, "workload.memory_parallelism": math.nan})
    assert len(bad) == 2 and "machine.walk_2d_factor=9" in bad[0]


def test_an_implausible_measurement_is_refused_and_nothing_written(tmp_path, capsys):
    """dTLB load misses that rise under migrc would need a negative hot set."""
    target = calibrate.seed_target()
    before, after = target["measured"]["dtlb_load_misses"]
    target["measured"]["dtlb_load_misses"] = [before, before * 1.5]
    path = tmp_path / "target.yaml"
    path.write_text(yaml.safe_dump(target))
    out = tmp_path / "cal.yaml"
    assert calibrate.main(["--target", str(path), "--out", str(out)]) == 1
    assert not out.exists()
    assert "workload.load_hot_pages=" in capsys.readouterr().err


def test_a_target_missing_a_counter_is_one_clear_line(tmp_path, capsys):
    path = tmp_path / "target.yaml"
    path.write_text(yaml.safe_dump({"measured": {"runtime_s": [1.0, 0.9]}, "units": 1}))
    assert calibrate.main(["--target", str(path), "--out", str(tmp_path / "c.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tlb_shootdowns" in err[0]
