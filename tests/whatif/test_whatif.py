"""migrc-whatif predicts from measured vmstat rates, and refuses bad input in one line."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from migrc_sweep import whatif

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "whatif_example.yaml"


def _doc(**changes):
    doc = {"num_cpus": 16, "elapsed_s": 100, "replicates": 2, "overrides": ["fidelity=tiny"],
           "vmstat_per_s": {"pgdemote_kswapd": 20000, "numa_pages_migrated": 18000, "pgmigrate_success": 38000}}
    doc.update(changes)
    return doc


def test_documented_example_runs_and_predicts_fewer_shootdowns_with_migrc(capsys):
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["overrides"] = doc.get("overrides", []) + ["fidelity=tiny"]
    doc["replicates"] = 2
    rows = {r["policy"]: r for r in whatif.predict(doc)}
    assert set(rows) == {"batched", "migrc", "luf"}
    assert rows["migrc"]["shootdowns_per_s"] < rows["batched"]["shootdowns_per_s"]
    assert rows["batched"]["runtime_s"] == pytest.approx(doc["elapsed_s"])


def test_measured_rates_drive_the_prediction():
    """Twice the measured demotion rate means about twice the baseline shootdowns."""
    low = whatif.predict(_doc())[0]["shootdowns_per_s"]
    doubled = _doc(vmstat_per_s={"pgdemote_kswapd": 40000, "numa_pages_migrated": 36000,
                                 "pgmigrate_success": 76000})
    high = whatif.predict(doubled)[0]["shootdowns_per_s"]
    assert high / low == pytest.approx(2.0, rel=0.15)


def test_delta_form_equals_rate_form():
    per_s = _doc()
    delta = _doc()
    delta.pop("vmstat_per_s")
    delta["vmstat_delta"] = {k: v * 100 for k, v in per_s["vmstat_per_s"].items()}
    assert whatif.rates_per_s(delta) == pytest.approx(whatif.rates_per_s(per_s))


def test_without_read_only_folios_migrc_changes_nothing():
    rows = whatif.predict(_doc(overrides=["fidelity=tiny", "workload.read_only_fraction=0.0",
                                          "workload.write_fraction=0.5"]))
    assert rows[1]["shootdowns_per_s"] == pytest.approx(rows[0]["shootdowns_per_s"], rel=0.02)


@pytest.mark.parametrize("change, key", [
    ({"num_cpus": 0}, "num_cpus=0"),
    ({"elapsed_s": -1}, "elapsed_s=-1"),
    ({"vmstat_per_s": {"pgdemote_kswapd": 1, "numa_pages_migrated": 5, "pgmigrate_success": 2}},
     "pgmigrate_success"),
    ({"vmstat_per_s": {"pgdemote_kswapd": 1, "numa_pages_migrated": 1}}, "pgmigrate_success"),
    ({"colour": "red"}, "colour"),
    ({"machine": "no_such_machine"}, "no_such_machine"),
])
def test_bad_input_is_one_line_naming_the_key(tmp_path, change, key):
    path = tmp_path / "in.yaml"
    path.write_text(yaml.safe_dump(_doc(**change)))
    out = subprocess.run([sys.executable, "-m", "migrc_sweep.whatif", str(path)], capture_output=True, text=True)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0], out.stderr
