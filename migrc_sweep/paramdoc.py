"""Render the parameter table of docs/model.md from sim.params' metadata.

    python -m migrc_sweep.paramdoc --write   # refresh docs/model.md in place

A test compares the committed table with this rendering, so the documented
unit, default, range and source of every parameter cannot drift from the code.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from sim.params import param_table

BEGIN, END = "<!-- params:begin -->", "<!-- params:end -->"
MODEL_MD = Path(__file__).resolve().parent.parent / "docs" / "model.md"


def _num(x) -> str:
    return "" if x is None else f"{x:g}"


def render() -> str:
    lines = ["| key | default | unit | range | meaning | source |", "|---|---|---|---|---|---|"]
    for r in param_table():
        rng = "" if r["lo"] is None else f"[{_num(r['lo'])}, {_num(r['hi'])}]"
        lines.append(f"| `{r['key']}` | {r['default']} | {r['unit']} | {rng} | {r['doc']} | {r['source']} |")
    return "\n".join(lines)


def refresh(text: str) -> str:
    block = f"{BEGIN}\n{render()}\n{END}"
    return re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="rewrite docs/model.md's table in place")
    args = ap.parse_args(argv)
    if args.write:
        MODEL_MD.write_text(refresh(MODEL_MD.read_text()))
    else:
        print(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
