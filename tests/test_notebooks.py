"""The planners' notebooks run, top to bottom, against the demo database (so they never
rot): executed by nbclient in a real kernel, every cell without error."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _outputs(nb) -> str:
    text = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text.append(out.get("text", ""))
            text.append(str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(text)


def test_coverage_gaps_notebook_runs_on_the_demo(demo_settings, monkeypatch, tmp_path):
    monkeypatch.setenv("GIS_DB_NAME", demo_settings.db_name)
    monkeypatch.setenv("GIS_DB_PORT", str(demo_settings.db_port))
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path))
    nb = nbformat.read(NOTEBOOKS / "coverage_gaps.ipynb", as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors
    text = _outputs(nb)
    assert "within a 1 km walk of a party organisation" in text
    assert "sites cover" in text
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 3  # the gap map, the sites map and the hotspot map
    assert "grids are hot spots at 95 % or more" in text and "recurring spots" in text
    assert os.environ["GIS_DB_NAME"] == demo_settings.db_name
