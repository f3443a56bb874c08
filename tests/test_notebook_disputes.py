"""The 2018 西城/丰台 notebook runs from top to bottom and draws its maps."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = (
    Path(__file__).resolve().parents[1] / "notebooks" / "cross_boundary_xicheng_fengtai.ipynb"
)


def test_cross_boundary_notebook_executes(tmp_path, monkeypatch):
    # the kernel imports gridcore from this checkout, whatever is installed
    root = str(NOTEBOOK.parents[1])
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError if any cell (and its asserts) fails
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "7 meetings" in text and "广安门外街道" in text
    assert not [o for o in outputs if o.output_type == "error"]
    data = [
        o.get("data", {}) for o in outputs if o.output_type in ("display_data", "execute_result")
    ]
    assert any("image/png" in d for d in data)  # the matplotlib map
    assert any("leaflet" in d.get("text/html", "").lower() for d in data)  # the folium map
    history = next(d["text/plain"] for d in data if "close" in d.get("text/plain", ""))
    assert "open" in history and history.count("meeting") == 7
