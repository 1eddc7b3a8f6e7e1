"""The notebook runs top to bottom under nbclient, in-process sweep and loaded dataset alike."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "when_migrc_pays_off.ipynb"


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


@pytest.mark.parametrize("source", ["simulated", "dataset"])
def test_notebook_executes_and_shows_every_figure(source, map_dataset, monkeypatch, tmp_path):
    if source == "dataset":
        monkeypatch.setenv("MIGRC_NOTEBOOK_DATASET", str(map_dataset))
    else:
        monkeypatch.delenv("MIGRC_NOTEBOOK_DATASET", raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    started = time.monotonic()
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert time.monotonic() - started < 60
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    pngs = [o for o in outputs if "data" in o and "image/png" in o["data"]]
    assert len(pngs) == 5  # the five figures
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "crossing(s) of machine.num_cpus" in printed and "saved vs a dense grid" in printed
