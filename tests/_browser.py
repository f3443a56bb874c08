"""Open a written map page in headless Chromium; report the DOM and the errors seen.

Pages are written with `gridcore.maps.save_html` (assets inlined), so nothing is fetched
but tiles, which fail quietly offline: they are images, not scripts. An error collector
is injected at the top of <head>; it records uncaught JS errors and failed script or
style loads, and writes them into the DOM once the page has loaded.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

_COLLECTOR = """<script>
window.__gc_errors = [];
window.addEventListener('error', function (e) {
  var t = e.target;
  if (t && t !== window && (t.tagName === 'SCRIPT' || t.tagName === 'LINK')) {
    window.__gc_errors.push({kind: 'load', what: t.src || t.href});
  } else if (!t || t === window) {
    window.__gc_errors.push({kind: 'js', what: String(e.message) + ' @' + e.lineno});
  }
}, true);
window.addEventListener('load', function () {
  setTimeout(function () {
    document.documentElement.setAttribute('data-gc-errors', JSON.stringify(window.__gc_errors));
  }, 1500);
});
</script>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError("chromium is not installed (Debian: apt-get install -y chromium)")


def render(page: Path) -> tuple[str, list[dict]]:
    """Load ``page`` in headless Chromium; return the DOM and the errors recorded."""
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / page.name
        html = page.read_text(encoding="utf-8").replace("<head>", "<head>\n" + _COLLECTOR, 1)
        local.write_text(html, encoding="utf-8")
        cmd = [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={Path(tmp) / 'profile'}",
            "--window-size=1200,900",
            "--virtual-time-budget=8000",
            "--dump-dom",
            local.as_uri(),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    dom = out.stdout
    m = re.search(r"data-gc-errors=\"([^\"]*)\"", dom)
    if not m:
        raise AssertionError(f"the page did not finish loading; chromium: {out.stderr[-2000:]}")
    errors = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    return dom, errors
