"""From a stored run to the paper's Figure 1a-style plot and a claims table.

``claims(result)`` tests what this run can test of the paper's Section 3, each with the
measured numbers and a verdict; ``figure(result)`` is the plotly figure (log-scale loss with
the switch marked, alignment, sharpness beside 2/η); ``write_report`` saves HTML, PNG and a
markdown table.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .figures import figure, save_png
from .results import RunResult

# Thresholds of the verdicts (what "near 1", "stops", "keeps pace" and "most" mean here).
ALIGNED = 0.8          # χ_k of the full gradient at the switch
STALLED = 0.25         # Dom's loss decrease after the switch, as a fraction of SGD's
KEEPS_PACE = 1.10      # Bulk's final loss within 10% of SGD's
MOST_OF_NORM = 0.5     # ‖P_k g‖² / ‖g‖² of the minibatch gradient: the removed part is the larger
                       # one (‖P_k g‖ > ‖(I − P_k) g‖), since the two parts are orthogonal


@dataclass(frozen=True)
class Claim:
    claim: str
    measured: str
    holds: bool | None  # None: this run cannot test it


def _main_rows(result: RunResult, mode: str) -> list[dict]:
    return [r for r in result.rows if r["phase"] == "main" and r["mode"] == mode]


def _finite(values):
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def _mean(values) -> float:
    values = _finite(values)
    return sum(values) / len(values) if values else math.nan


def _diverged(result: RunResult, mode: str) -> bool:
    return result.summary.get("modes", {}).get(mode, {}).get("status") == "diverged"


def claims(result: RunResult) -> list[Claim]:
    """The paper's Section 3 claims this run can test, with measured numbers and verdicts
    (``holds`` is ``None`` where the run cannot decide, e.g. SGD itself made no progress)."""
    cfg = result.config
    base = cfg.label("none")
    out = []
    warm = [r for r in result.rows if r["phase"] == "warmup"]
    chis = _finite(r.get("alignment_full") for r in warm)
    if chis:
        tail = chis[-3:]
        out.append(Claim(f"Alignment χ_{cfg.k}(∇L) rises to near 1 under {base}",
                         f"χ = {chis[0]:.2f} at step 0 → {_mean(tail):.2f} (mean of the last {len(tail)} "
                         f"checks before the switch at step {result.switch_step})",
                         bool(_mean(tail) >= ALIGNED)))
    first_last = {}
    for mode in cfg.modes:
        rows = [r for r in _main_rows(result, mode) if _finite([r["train_loss"]])]
        if len(rows) >= 2:
            first_last[mode] = (rows[0]["train_loss"], rows[-1]["train_loss"])
    if "none" in first_last and "dom" in first_last:
        (s0, s1), (d0, d1) = first_last["none"], first_last["dom"]
        claim = f"{cfg.label('dom')} stops decreasing the loss after the switch"
        if _diverged(result, "dom"):
            out.append(Claim(claim, f"{cfg.label('dom')} diverged after the switch (loss {d0:.4f} → non-finite)", True))
        elif not s1 < s0:
            out.append(Claim(claim, f"{base} itself did not decrease the loss after the switch ({s0:.4f} → {s1:.4f}): "
                                    "nothing to compare with", None))
        else:
            frac = (d0 - d1) / (s0 - s1)
            out.append(Claim(claim, f"loss {d0:.4f} → {d1:.4f} ({frac:.0%} of {base}'s decrease {s0:.4f} → {s1:.4f})",
                             bool(frac < STALLED)))
    if "none" in first_last and "bulk" in first_last:
        s1, b1 = first_last["none"][1], first_last["bulk"][1]
        claim = f"{cfg.label('bulk')} keeps pace with {base}"
        if _diverged(result, "bulk"):
            out.append(Claim(claim, f"{cfg.label('bulk')} diverged after the switch", False))
        elif _diverged(result, "none"):
            out.append(Claim(claim, f"{base} diverged, {cfg.label('bulk')} did not (final loss {b1:.4f})", True))
        elif s1 > 0:
            out.append(Claim(claim, f"final loss {b1:.4f} vs {s1:.4f} (ratio {b1 / s1:.2f})",
                             bool(b1 / s1 <= KEEPS_PACE)))
        else:
            out.append(Claim(claim, f"final loss {b1:.4f} vs {s1:.4f}", bool(b1 <= s1)))
    # χ of the minibatch gradient g (unprojected), measured in the Bulk branch at every log step
    chis = _finite(r.get("alignment_batch") for r in _main_rows(result, "bulk"))
    if chis:
        f2 = _mean(c * c for c in chis)
        out.append(Claim("The dominant part that Bulk removes carries most of the update's norm",
                         f"mean ‖P_k g‖² / ‖g‖² = {f2:.2f} for the minibatch gradient after the switch "
                         f"(mean ‖P_k g‖ / ‖g‖ = {_mean(chis):.2f})", bool(f2 > MOST_OF_NORM)))
    return out


def claims_markdown(items: list[Claim]) -> str:
    lines = ["| claim (paper, Section 3) | measured in this run | holds |", "|---|---|---|"]
    for c in items:
        verdict = "n/a" if c.holds is None else ("yes" if c.holds else "**no**")
        lines.append(f"| {c.claim} | {c.measured} | {verdict} |")
    return "\n".join(lines)


def write_report(result: RunResult, out_dir) -> dict[str, Path]:
    """Write ``figure.html``, ``figure.png`` and ``claims.md`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / "figure.html", "png": out / "figure.png", "claims": out / "claims.md"}
    figure(result).write_html(paths["html"], include_plotlyjs=True)
    save_png(result, paths["png"])
    table = claims_markdown(claims(result))
    paths["claims"].write_text(f"Run `{result.path}` ({result.status}).\n\n{table}\n")
    return paths
