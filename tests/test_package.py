import subprocess
import sys


def test_import_gridcore_stays_light():
    code = (
        "import sys, gridcore, gridcore.grid, gridcore.store, gridcore.sample;"
        "heavy = {'folium', 'matplotlib', 'fastapi', 'esda', 'libpysal'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_gridcore_never_imports_the_web_framework():
    from pathlib import Path

    import gridcore

    for path in Path(gridcore.__file__).parent.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "import fastapi" not in text and "from fastapi" not in text, path.name
