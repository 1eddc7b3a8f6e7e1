"""Every option of every config group composes into valid SimParams."""

from __future__ import annotations

import dataclasses

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from migrc_sweep.cli import plain
from migrc_sweep.confdir import config_dir
from migrc_sweep.points import build_plan
from sim.params import GROUPS, POLICIES, SimParams

CONF = config_dir()
GROUPS_OF_APP = ("machine", "memory", "reclaim", "workload", "neighbour", "fidelity", "policy", "experiment",
                 "sweep", "calibration")
GROUP_OPTIONS = [(g, f.stem) for g in GROUPS_OF_APP for f in sorted((CONF / g).glob("*.yaml"))]


def test_every_group_has_options():
    assert {g for g, _ in GROUP_OPTIONS} == set(GROUPS_OF_APP)


@pytest.mark.parametrize("group, option", GROUP_OPTIONS)
def test_option_composes_into_valid_points(compose_config, group, option):
    cfg = compose_config([f"{group}={option}"] + ([] if group == "sweep" else ["sweep=none"]))
    plan = build_plan([plain(cfg)])
    assert plan.points and isinstance(plan.points[0].params, SimParams)


def test_defaults_are_the_dataclass_defaults_with_the_calibration_applied(compose_config):
    """The default options describe the seed machine: the dataclass defaults, refined by the fit."""
    import yaml

    params = build_plan([plain(compose_config(["sweep=none", "fidelity=default"]))]).points[0].params
    fitted = yaml.safe_load((CONF / "calibration" / "seed_v9.yaml").read_text())
    expected = SimParams()
    for group in ("machine", "workload", "reclaim"):
        expected = dataclasses.replace(expected, **{group: dataclasses.replace(getattr(expected, group),
                                                                                **fitted[group])})
    assert params == expected


def test_any_parameter_is_an_ordinary_override(compose_config):
    """sim_defaults puts every key in the config, so sweeping one needs no '+'."""
    p = build_plan([plain(compose_config(["sweep=none", "machine.page_walk_ns=55"]))]).points[0].params
    assert p.machine.page_walk_ns == 55


def test_bare_metal_differs_where_the_issue_says(compose_config):
    m = build_plan([plain(compose_config(["sweep=none", "machine=bare_metal"]))]).points[0].params.machine
    assert (m.is_guest, m.ipi_send_base_ns, m.ipi_send_per_target_ns, m.irq_receive_ns, m.hinting_fault_ns) == \
        (False, 800.0, 70.0, 600.0, 800.0)


@pytest.mark.parametrize("option, latency_ns", [("seed_vm", 120.0), ("remote_dram", 140.0), ("cxl", 250.0),
                                                ("cxl_slow", 400.0)])
def test_memory_options_set_the_slow_latency(compose_config, option, latency_ns):
    p = build_plan([plain(compose_config(["sweep=none", f"memory={option}"]))]).points[0].params
    assert p.memory.slow_latency_ns == latency_ns


def test_a_policy_file_per_kernel_variant_and_all(compose_config):
    for policy in POLICIES:
        cfg = compose_config(["sweep=none", f"policy={policy}"])
        assert cfg.policy.baseline == "batched"
        assert list(cfg.policy.variants) == ([] if policy == "batched" else [policy])
    every = compose_config(["sweep=none", "policy=all"])
    assert set(every.policy.variants) == set(POLICIES) - {"batched"}


@pytest.mark.parametrize("name", [f.stem for f in (CONF / "sweep").glob("*.yaml") if f.stem != "none"])
def test_named_sweeps_are_multirun_grids(compose_config, name):
    cfg = compose_config([f"sweep={name}"])
    params = dict(cfg.hydra.sweeper.params) if "hydra" in cfg else None
    if params is None:  # compose() hides the hydra node unless asked
        from hydra import compose, initialize_config_dir
        with initialize_config_dir(str(CONF), version_base="1.3"):
            full = compose("config", overrides=[f"sweep={name}"], return_hydra_config=True)
        params = dict(full.hydra.sweeper.params)
        assert full.hydra.mode.name == "MULTIRUN"
    axes = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    sizes = [len(list(o.sweep_string_iterator())) for o in axes]
    assert len(sizes) >= 2
    if name == "default":
        import math
        assert math.prod(sizes) >= 8
        assert cfg.fidelity.window_s < compose_config(["sweep=none"]).fidelity.window_s  # cheap default job


def test_group_keys_match_dataclass_fields():
    """A typo in a YAML file must not slip through as a silently ignored key."""
    import yaml
    fields = {g: {f.name for f in dataclasses.fields(cls)} for g, cls in GROUPS.items()}
    for group in GROUPS:
        for f in (CONF / group).glob("*.yaml"):
            doc = yaml.safe_load(f.read_text()) or {}
            # a global overlay (e.g. a neighbour that also sets workload.num_threads) nests by group
            nested = doc if f.read_text().startswith("# @package _global_") else {group: doc}
            for g, keys in nested.items():
                assert set(keys) <= fields[g], f
