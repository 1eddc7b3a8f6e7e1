"""migrc-report end to end: the HTML's tables equal the raw rows' numbers, and every figure shows."""

from __future__ import annotations

import base64
import io
import math
import re
import statistics
import subprocess
from html.parser import HTMLParser

import pytest
from PIL import Image

from analysis_datasets import MAP_SEEDS, expected_payoff, params, read_raw, simulated_rows, write_partition
from migrc_sweep import report, seed_table
from migrc_sweep.analysis.payoff import MEASURES

AXES = ("memory.slow_latency_ns", "reclaim.extra_alloc_mib_per_s", "machine.num_cpus", "machine.is_guest")


class ReportParser(HTMLParser):
    """<img> sources and every <table id=...> as a list of {header: cell text} rows."""

    def __init__(self):
        super().__init__()
        self.images, self.tables = [], {}
        self._table, self._row, self._cell, self._header = None, None, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        elif tag == "table":
            self._table, self._header = attrs.get("id"), []
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if not self._header:
                self._header = self._row
            else:
                self.tables[self._table].append(dict(zip(self._header, self._row)))
            self._row = None
        elif tag == "table":
            self._table = None


def cell_float(text: str) -> float:
    return float("nan") if text == "NaN" else float(text)


def close(shown: str, value: float, decimals_abs: float) -> bool:
    got = cell_float(shown)
    if math.isnan(value):
        return math.isnan(got)
    return math.isclose(got, value, rel_tol=1e-5, abs_tol=decimals_abs)


def config_of(row: dict) -> dict:
    out = {}
    for a in AXES:
        out[a] = row[a] == "True" if a == "machine.is_guest" else float(row[a])
    return out


@pytest.fixture(scope="module")
def built(map_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    assert report.main([str(map_dataset), "--out", str(out)]) == 0
    path = out / report.REPORT_NAME
    parser = ReportParser()
    parser.feed(path.read_text(encoding="utf-8"))
    return path, parser


def test_every_img_is_decodable_png(built):
    _, parsed = built
    assert len(parsed.images) == 5
    for src in parsed.images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)  # self-contained: nothing to fetch
        data = base64.b64decode(src[len(prefix):], validate=True)
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
        with Image.open(io.BytesIO(data)) as img:
            assert img.format == "PNG" and img.width > 300 and img.height > 200
            assert len(set(img.convert("L").getdata())) > 10  # drawn, not blank


def test_payoff_table_equals_raw_rows(built, map_dataset):
    _, parsed = built
    raw = read_raw(map_dataset)
    rows = parsed.tables["table-payoff"]
    assert len(rows) == 16 * 2  # 16 configs x 2 variants
    for row in rows:
        assert int(row["n_seeds"]) == len(MAP_SEEDS)
        for measure, (metric, kind) in MEASURES.items():
            n, mean, lo, hi = expected_payoff(raw, config_of(row), row["policy"], metric, kind)
            assert close(row[measure], mean, 5e-5), (measure, row[measure], mean)
            assert close(row[f"{measure}_ci_low"], lo, 5e-5)
            assert close(row[f"{measure}_ci_high"], hi, 5e-5)


def test_seed_cost_price_status_tables_equal_raw_rows(built, map_dataset):
    _, parsed = built
    raw = read_raw(map_dataset)
    ok = [r for r in raw if r["status"] == "ok"]

    seed_rows = parsed.tables["table-seed"]
    assert [r["metric"] for r in seed_rows] == list(seed_table.MEASURED)
    for r in seed_rows:
        assert close(r["measured_change_pct"], seed_table.change_pct(r["metric"]), 5e-5)
        _, mean, lo, hi = expected_payoff(raw, config_of(r), "migrc", r["metric"], "change")
        assert close(r["simulated_change_pct"], mean, 5e-5) and close(r["simulated_ci_low_pct"], lo, 5e-5)

    def matching(config, policy):
        return [r for r in ok if r["policy"] == policy and all(r[k] == v for k, v in config.items())]

    cost_rows = parsed.tables["table-cost"]
    assert len(cost_rows) == 32
    for r in cost_rows:
        cfg = config_of(r)
        base = {b["seed"]: b for b in matching(cfg, "batched")}
        var = matching(cfg, r["policy"])
        for col in ("runtime_saved_s", "tlb_walk_s", "interrupt_s", "initiator_wait_s", "copy_s"):
            metric = "runtime_s" if col == "runtime_saved_s" else col
            expected = statistics.fmean(base[v["seed"]][metric] - v[metric] for v in var)
            assert close(r[col], expected, 1e-6), (col, r[col], expected)

    price_rows = parsed.tables["table-price"]
    for r in price_rows:
        var = matching(config_of(r), r["policy"])
        for col in ("held_mib_mean", "stale_window_us_p99", "alloc_flush_ns_per_s", "pending_pages_mean"):
            assert close(r[col], statistics.fmean(v[col] for v in var), 1e-6), col

    status = {(r["policy"], r["status"]): int(r["rows"]) for r in parsed.tables["table-status"]}
    for (policy, st), count in status.items():
        assert count == sum(1 for x in raw if x["policy"] == policy and x["status"] == st)
    assert status[("migrc", "failed")] == 1
    assert len(parsed.tables["table-failed"]) == 1


def test_config_and_provenance_tables(built):
    _, parsed = built
    config = {r["key"]: r for r in parsed.tables["table-config"]}
    assert config["memory.slow_latency_ns"]["values"] == "90, 200" and config["memory.slow_latency_ns"]["unit"] == "ns"
    assert config["machine.num_cpus"]["values"] == "8, 32"
    assert config["fidelity.window_s"]["n_values"] == "1"
    prov = {r["column"]: r for r in parsed.tables["table-provenance"]}
    assert prov["host"]["values"] == "test-host" and prov["git_commit"]["values"] == "0" * 40


def test_cli_refuses_a_missing_dataset(tmp_path, capsys):
    assert report.main([str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    assert "no dataset" in capsys.readouterr().err


def test_a_sweep_without_migrc_reports_its_own_variant(tmp_path, capsys):
    root = tmp_path / "ds"
    write_partition(root, "luf-only", simulated_rows([(params(), s) for s in (0, 1)], False,
                                                     policies=("batched", "luf")))
    assert report.main([str(root), "--out", str(tmp_path / "out")]) == 0
    assert "showing 'luf' instead" in capsys.readouterr().err
    parsed = ReportParser()
    parsed.feed((tmp_path / "out" / report.REPORT_NAME).read_text(encoding="utf-8"))
    assert len(parsed.images) == 5
    assert [r["policy"] for r in parsed.tables["table-payoff"]] == ["luf"]


BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IMAGE_CHECK = ("<script>window.addEventListener('load',function(){var a=Array.prototype.slice.call(document.images);"
               "var ok=a.filter(function(i){return i.complete&&i.naturalWidth>0;});var p=document.createElement('pre');"
               "p.id='img-check';p.textContent='IMAGES='+a.length+';DECODED='+ok.length;"
               "document.body.appendChild(p);});</script>")


def test_report_opens_in_chromium_with_every_figure_showing(built, chromium, tmp_path):
    path, _ = built
    # A copy with a probe script: the browser itself reports how many <img> it decoded.
    probe = tmp_path / "probe.html"
    probe.write_text(path.read_text(encoding="utf-8").replace("</body>", IMAGE_CHECK + "</body>"), encoding="utf-8")
    dom = subprocess.run([chromium, *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile-dom'}",
                          "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120)
    found = re.search(r"IMAGES=(\d+);DECODED=(\d+)", dom.stdout)
    assert found, dom.stderr[-2000:]
    assert found.groups() == ("5", "5")

    shot = tmp_path / "report.png"
    subprocess.run([chromium, *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile-shot'}",
                    f"--screenshot={shot}", "--window-size=1200,3000", path.as_uri()],
                   capture_output=True, text=True, timeout=120)
    with Image.open(shot) as img:
        assert img.size == (1200, 3000)
        assert len(img.convert("RGB").getcolors(maxcolors=1 << 20) or range(1 << 20)) > 50  # figures, not a blank page
