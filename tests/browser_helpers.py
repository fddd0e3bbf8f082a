"""Helpers for the browser tests: Debian's chromium through Playwright, servers on 127.0.0.1.

Browser tests skip with a reason when ``/usr/bin/chromium`` is missing, unless
``SUBSPACE_KIT_REQUIRE_BROWSER=1`` (CI), where they fail. Servers are started and ended by the
tests themselves, with bounded waits; their output goes to a log file shown on failure.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
ARTIFACTS = REPO / "test-artifacts"
BIN = Path(sys.executable).parent  # the venv the tests run in: its voila / jupyter

# What the page shows, read from the plotly graph divs: points per trace of the first panel.
LOSS_POINTS_JS = """() => {
  const counts = {};
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    for (const t of (gd.data || [])) {
      if (t.meta && t.meta[0] === 'train_loss') counts[t.name] = (t.x || []).length;
    }
  }
  return counts;
}"""
# Each plotted axis of the page: its type, its range as plotly draws it (log10 units on a log axis)
# and the extent of the finite data drawn against it.
AXES_JS = """() => {
  const out = [];
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const fl = gd._fullLayout;
    if (!fl) continue;
    const extent = {};
    for (const t of (gd._fullData || [])) {
      if (t.visible !== true) continue;
      for (const L of ['x', 'y']) {
        const id = t[L + 'axis'];
        const vals = Array.from(t[L] || []).filter(v => typeof v === 'number' && Number.isFinite(v));
        if (!id || !vals.length) continue;
        const [lo, hi] = [Math.min(...vals), Math.max(...vals)];
        const e = extent[id] || [lo, hi];
        extent[id] = [Math.min(e[0], lo), Math.max(e[1], hi)];
      }
    }
    for (const key of Object.keys(fl)) {
      if (!/^[xy]axis[0-9]*$/.test(key)) continue;
      const ax = fl[key];
      out.push({axis: ax._id, type: ax.type, range: ax.range, data: extent[ax._id] || null,
                title: (ax.title && ax.title.text) || ''});
    }
  }
  return out;
}"""
TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "', "Error: ", "There was an error when executing")


def require_chromium() -> None:
    """Skip (or fail under ``SUBSPACE_KIT_REQUIRE_BROWSER=1``) without Debian's chromium."""
    if CHROMIUM.exists():
        return
    reason = (f"{CHROMIUM} not found: install Debian's chromium "
              "(apt-get install --no-install-recommends chromium, or bash scripts/ensure_chromium.sh)")
    if os.environ.get("SUBSPACE_KIT_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " — required because SUBSPACE_KIT_REQUIRE_BROWSER=1")
    pytest.skip(reason)


@contextlib.contextmanager
def chromium_page(viewport=(1280, 1400)):
    """A Playwright page in headless Debian chromium (never Playwright's own browser builds)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
                                     timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.set_default_timeout(120_000)  # generous: CI machines are shared and slow
            yield page
        finally:
            browser.close()


def env_with_tests_on_path(**extra) -> dict:
    """Environment for a server whose kernels import modules from ``tests/`` (the fake source)."""
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(cmd: list[str], ready_url: str, *, cwd: Path, env: dict | None = None, log: Path,
           timeout: float = 120):
    """Start ``cmd`` (its own process group), wait until ``ready_url`` answers 200, yield the
    process; on exit end the whole group (SIGTERM, then SIGKILL after 10 s)."""
    full_env = {**os.environ, **(env or {})}
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            _wait_ready(proc, ready_url, timeout, log)
            yield proc
        except BaseException:
            print(f"--- server log ({log}) ---\n{tail(log)}")  # shown by pytest with the failure
            raise
        finally:
            _end_group(proc)


def _wait_ready(proc, url: str, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was ready:\n{tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s:\n{tail(log)}")


def _end_group(proc) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def tail(path: Path, n: int = 4000) -> str:
    try:
        return Path(path).read_text(errors="replace")[-n:]
    except OSError:
        return ""


def wait_for(predicate, timeout: float, what: str, interval: float = 0.5):
    """Poll ``predicate()`` until it returns a truthy value; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; last value: {value!r}")


def loss_points(page) -> dict[str, int]:
    return page.evaluate(LOSS_POINTS_JS)


def plotted_axes(page) -> list[dict]:
    return page.evaluate(AXES_JS)


def absurd_axes(axes: list[dict], *, max_decades: float = 8.0, min_coverage: float = 0.2) -> list[str]:
    """What is wrong with the plotted axes (``[]`` if nothing): a range that is not finite, a log
    axis over more than ``max_decades`` decades or reaching below 1e-20 (the 1e-49 kind), or
    data squashed into less than ``min_coverage`` of its axis."""
    import math

    problems = []
    for ax in axes:
        rng, data, name = ax.get("range"), ax.get("data"), f"{ax['axis']} ({ax.get('title') or 'untitled'})"
        if not data:
            continue  # an empty panel (e.g. before the switch) has no range to judge
        try:
            lo, hi = (float(v) for v in rng)
        except (TypeError, ValueError):
            problems.append(f"{name}: range {rng!r} is not numeric")
            continue
        if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
            problems.append(f"{name}: range {rng!r}")
            continue
        d_lo, d_hi = data
        if ax.get("type") == "log":
            if hi - lo > max_decades or lo < -20:
                problems.append(f"{name}: log range 1e{lo:.1f} to 1e{hi:.1f}")
            if d_lo <= 0:
                continue
            d_lo, d_hi = math.log10(d_lo), math.log10(d_hi)
        if d_hi > d_lo and (d_hi - d_lo) / (hi - lo) < min_coverage:
            problems.append(f"{name}: data {data} fill {(d_hi - d_lo) / (hi - lo):.0%} of the range {rng}")
    return problems


def assert_no_traceback(page) -> None:
    text = page.inner_text("body")
    found = [m for m in TRACEBACK_MARKERS if m in text]
    assert not found, f"the page shows Python error text {found}:\n{text[-3000:]}"


@contextlib.contextmanager
def explain_failure(page, name: str):
    """On failure, keep what the page showed: ``test-artifacts/<name>-failure.png`` and ``.txt``."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(artifact(f"{name}-failure.png")), full_page=True, timeout=30_000)
        with contextlib.suppress(Exception):
            artifact(f"{name}-failure.txt").write_text(page.inner_text("body", timeout=10_000))
        raise


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name
