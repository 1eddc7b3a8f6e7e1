"""The migrc_ray launcher's shortcut (set a value on the config resolved once) gives exactly what a
full Hydra compose per job gives, and steps aside whenever an interpolation could see the change."""

from __future__ import annotations

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from hydra_compose import compose_cfg
from hydra_plugins.migrc_sweep_launcher.migrc_launcher import _plain_value_ok, _referenced_keys, _with_value
from migrc_sweep.cli import plain

BASE = ["machine=kvm_guest", "fidelity=tiny"]


@pytest.fixture(scope="module")
def base():
    cfg = compose_cfg(BASE)
    return plain(cfg), _referenced_keys(cfg)


@pytest.mark.parametrize("overrides, shortcut", [
    (["machine.num_cpus=4"], True),
    (["machine.num_cpus=4", "workload.footprint_mib=2000"], True),
    (["machine.walk_2d_factor=3.0"], True),        # an interpolation's target, not its source
    (["fidelity.window_s=1e3"], True),
    (["calibration.machine.walk_2d_factor=5.0"], False),   # machine presets read it
    (["paths.outputs=/elsewhere"], False),                 # store.root reads it
    (["+machine.bogus=1"], False),                         # adds a key: Hydra must refuse it
    (["machine.bogus=1"], False),                          # missing key: Hydra's own message
])
def test_shortcut_equals_a_full_compose(base, overrides, shortcut):
    resolved, referenced = base
    parsed = OverridesParser.create().parse_overrides(overrides)
    assert all(_plain_value_ok(o, resolved, referenced) for o in parsed) is shortcut
    if not shortcut:
        return
    job = resolved
    for o in parsed:
        job = _with_value(job, o.key_or_group, o.value())
    assert job == plain(compose_cfg(BASE + overrides))
    assert resolved == plain(compose_cfg(BASE))   # the shared base is never mutated


def test_interpolation_readers_are_found(base):
    _, referenced = base
    assert "paths.outputs" in referenced
    assert any(r.startswith("calibration.") for r in referenced)
