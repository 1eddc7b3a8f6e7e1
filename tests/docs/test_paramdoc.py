"""docs/model.md's parameter table is the code's own metadata."""

import dataclasses

from migrc_sweep import paramdoc
from sim.params import GROUPS


def test_model_md_table_matches_code():
    text = paramdoc.MODEL_MD.read_text()
    assert paramdoc.refresh(text) == text, "run: python -m migrc_sweep.paramdoc --write"


def test_every_parameter_is_documented_with_unit_and_source():
    table = paramdoc.render()
    for name, cls in GROUPS.items():
        for f in dataclasses.fields(cls):
            assert f"`{name}.{f.name}`" in table
            assert f.metadata["unit"] and f.metadata["source"]
