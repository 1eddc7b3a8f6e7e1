"""Tests import shared helpers from named modules, never from conftest."""

from pathlib import Path


def test_no_test_imports_conftest():
    """With several conftest.py files, `import conftest` yields whichever was imported first."""
    offenders = [str(p) for p in Path(__file__).parent.rglob("*.py")
                 if p.name != "test_test_imports.py"
                 and any(line.startswith(("from conftest import", "import conftest"))
                         for line in p.read_text().splitlines())]
    assert offenders == []
