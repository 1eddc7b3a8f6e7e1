"""numba's on-disk cache of the flush kernel follows edits to any sim module (sim/jit_cache.py).

numba stamps a cached function with its own file only, so an edit to flush_events.py
alone once left the stale kernel in use. This runs a copy of sim in fresh processes:
compile, load from the cache, then edit a helper module and expect a recompile.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import sim

_PROBE = """
import json, sim
from sim import flush_cycle
rows = sim.simulate(sim.SimParams(), ["migrc"], seed=0)
st = flush_cycle._cycles_kernel.stats
print(json.dumps({"hits": sum(st.cache_hits.values()), "misses": sum(st.cache_misses.values()),
                  "file": sim.__file__}))
"""


def _run(root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "PYTHONPATH")}
    env["PYTHONPATH"] = str(root)
    out = subprocess.run([sys.executable, "-c", _PROBE], cwd=root, env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_an_edit_to_a_helper_module_recompiles_the_kernel(tmp_path):
    src = Path(sim.__file__).parent
    shutil.copytree(src, tmp_path / "sim", ignore=shutil.ignore_patterns("__pycache__"))
    first = _run(tmp_path)
    assert first["file"].startswith(str(tmp_path))       # the copy, not the installed sim
    assert first["misses"] == 1 and first["hits"] == 0
    again = _run(tmp_path)
    assert again["hits"] == 1 and again["misses"] == 0    # the cache works at all
    with open(tmp_path / "sim" / "flush_events.py", "a") as fh:
        fh.write("\n# an edit the kernel's own file does not see\n")
    edited = _run(tmp_path)
    assert edited["misses"] == 1 and edited["hits"] == 0
