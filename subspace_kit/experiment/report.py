"""From a stored run to the paper's Figure 1a-style plot and a claims table.

``claims(result)`` decides what this run can test of the paper's Section 3. Each ``Claim``
states its baseline and criterion, the numbers it was decided on, and one of three verdicts:
``"yes"``, ``"no"`` or ``"undecidable"`` (the horizon is too short, the base optimizer itself
made no progress, or the run did not log the metric). Every verdict can come out "no": a run
that does not show the phenomenon says so. ``write_report`` saves HTML, PNG and a markdown table.

The claims, with the thresholds below:

- ``alignment``: χ_k(∇L) of the full gradient under the base optimizer *rises* before the
  switch, by at least ``RISE`` from its first check, *and* reaches the paper's switch rule (an
  EMA of χ, the engine's ``first_switch``). Undecidable when χ starts above 1 − ``RISE`` (no room
  to rise) or when χ rose but phase 1 ended before the rule fired (too short to tell).
  Shown beside √(k/P), the χ of a random subspace, and beside GD's χ when a GD reference run
  is given.
- ``dom_stall``: Dom's loss decrease from the switch to the end is below ``STALLED`` of the base
  optimizer's decrease. Losses at the switch and at the end are medians of a few logged rows
  (``RunResult.loss_at_switch`` / ``final_loss``), so a single spike cannot decide it.
- ``bulk_pace``: Bulk's decrease is at least ``KEEPS_PACE`` of the base optimizer's.
- ``removed_part``: the dominant part that Bulk removes is the larger part of the update the
  base method would take, measured where the projection acts (``‖P_k v‖² / ‖v‖² >
  MOST_OF_NORM``), from ``alignment_base_update``. Runs made before the engine logged it read
  ``alignment_batch`` where that is the same vector; for momentum/Adam projected on the *update*
  they are undecidable rather than decided by a stand-in.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from .figures import figure, headline_figure, save_headline, save_png  # noqa: F401  (figure: notebooks import it from here)
from .results import RunResult, is_finite
from .switch import first_switch

# Thresholds of the verdicts (what "rises", "stops", "keeps pace" and "most" mean here).
RISE = 0.10            # χ must rise by at least this much from its first check
STALLED = 0.25         # Dom's decrease after the switch, as a fraction of the base optimizer's
KEEPS_PACE = 0.75      # Bulk's decrease, as a fraction of the base optimizer's
MOST_OF_NORM = 0.5     # ‖P_k v‖² / ‖v‖²: the removed part is the larger one (the parts are orthogonal)
PROGRESS = 0.02        # the base optimizer must remove 2% of the loss at the switch to compare with
MIN_CHECKS = 3         # alignment checks needed before the switch

YES, NO, UNDECIDABLE = "yes", "no", "undecidable"


@dataclass(frozen=True)
class Claim:
    """One claim: its text, how it is decided, the numbers, and the verdict.

    ``key``: ``"alignment"``, ``"dom_stall"``, ``"bulk_pace"`` or ``"removed_part"``.
    ``verdict``: ``"yes"``, ``"no"`` or ``"undecidable"``. ``values``: the numbers behind it.
    """

    key: str
    claim: str
    criterion: str
    measured: str
    verdict: str
    values: dict = field(default_factory=dict)

    @property
    def holds(self) -> bool | None:
        """True / False / None for yes / no / undecidable."""
        return {YES: True, NO: False}.get(self.verdict)


def claims(result: RunResult, *, plain: RunResult | None = None, gd: RunResult | None = None) -> list[Claim]:
    """The paper's Section 3 claims this run can test, decided (see the module docstring).

    ``plain``: a run whose ``"none"`` mode stands in for the base optimizer after the switch
    when ``result`` has none (e.g. a run of Dom and Bulk only, sharing its phase 1). ``gd``: a
    full-batch GD run from the same initialisation, shown beside the alignment (the paper's
    small-step GD shows no alignment).
    """
    out = []
    chis = result.alignment_checks()[1]
    if chis:
        out.append(alignment_claim(result, gd))
    base_run = result if result.main_rows("none") else plain
    if base_run is not None and base_run.main_rows("none"):
        if "dom" in result.config.modes:
            out.append(_progress_claim(result, base_run, "dom"))
        if "bulk" in result.config.modes:
            out.append(_progress_claim(result, base_run, "bulk"))
    if "bulk" in result.config.modes:
        out.append(removed_part_claim(result))
    return out


# ---------------------------------------------------------------------------- alignment
def alignment_claim(result: RunResult, gd: RunResult | None = None) -> Claim:
    cfg = result.config
    base = cfg.label("none")
    steps, chis = result.alignment_checks()
    k = cfg.k
    fired = first_switch(chis, threshold=cfg.switch_threshold, factor=cfg.switch_ema)
    start, end = chis[0], statistics.median(chis[-3:])
    random = result.random_alignment()
    values = {"chi_start": start, "chi_end": end, "checks": len(chis), "rise": end - start,
              "rule_step": steps[fired] if fired is not None else None, "random": random,
              "switch_step": result.switch_step}
    text = f"Alignment χ_{k}(∇L) rises to near 1 under {base}"
    criterion = (f"χ rises by ≥ {RISE:.2f} from its first check (end: median of the last 3 checks) and the "
                 f"switch rule (EMA, factor {cfg.switch_ema:g}, > {cfg.switch_threshold:g}) fires before the switch")
    rule = (f"rule fired at the check of step {steps[fired]}" if fired is not None
            else "rule not reached")
    measured = (f"χ = {start:.2f} at step {steps[0]} → {end:.2f} before the switch at step {result.switch_step} "
                f"({len(chis)} checks); {rule}; random {k}-dim subspace √(k/P) = {random:.3f}")
    if gd is not None:
        gd_chis = gd.alignment_checks()[1]
        if gd_chis:
            values["chi_gd"] = statistics.median(gd_chis[-3:])
            measured += f"; {gd.config.label('none')} (η = {gd.config.lr:g}) reference: χ = {values['chi_gd']:.2f}"
    measured += f"; checks ranged {min(chis):.2f}–{max(chis):.2f}"
    if len(chis) < MIN_CHECKS:
        verdict = UNDECIDABLE
        measured += f" — only {len(chis)} check(s) before the switch"
    elif start > 1 - RISE:
        verdict = UNDECIDABLE
        measured += f" — already {start:.2f} at the first check: no room for a rise of {RISE:.2f}"
    elif end - start < RISE:
        verdict = NO
    elif fired is not None:
        verdict = YES
    else:  # risen, but phase 1 ended (fixed switch, max_switch_step or end of run) before the rule fired
        verdict = UNDECIDABLE
        measured += f" — phase 1 ended at step {result.switch_step} before the rule fired (too short to tell)"
    return Claim("alignment", text, criterion, measured, verdict, values)


# ---------------------------------------------------------------------------- Dom and Bulk
def _progress_claim(result: RunResult, base_run: RunResult, mode: str) -> Claim:
    cfg = result.config
    base, label = cfg.label("none"), cfg.label(mode)
    l0 = base_run.loss_at_switch()
    s1, m1 = base_run.final_loss("none"), result.final_loss(mode)
    values = {"loss_at_switch": l0, "base_final": s1, "final": m1, "horizon": result.horizon}
    if mode == "dom":
        key, text = "dom_stall", f"{label} stops decreasing the loss after the switch"
        criterion = f"{label}'s decrease < {STALLED:.0%} of {base}'s, from the switch loss to the final loss"
    else:
        key, text = "bulk_pace", f"{label} keeps pace with {base}"
        criterion = f"{label}'s decrease ≥ {KEEPS_PACE:.0%} of {base}'s, from the switch loss to the final loss"
    criterion += " (medians of the rows around the switch and of the last rows)"
    if result.diverged(mode):
        verdict = YES if mode == "dom" else NO
        return Claim(key, text, criterion, f"{label} diverged after the switch", verdict, values)
    if base_run.diverged("none"):
        return Claim(key, text, criterion, f"{base} diverged after the switch: nothing to compare with",
                     UNDECIDABLE, values)
    if not all(map(is_finite, (l0, s1, m1))):
        return Claim(key, text, criterion, "losses not logged after the switch", UNDECIDABLE, values)
    span = f"over {result.horizon} steps after the switch"
    if l0 - s1 < PROGRESS * l0:
        return Claim(key, text, criterion,
                     f"{base} itself removed {(l0 - s1) / l0:.1%} of the loss {span} ({l0:.4f} → {s1:.4f}; "
                     f"needs ≥ {PROGRESS:.0%}): nothing to compare with", UNDECIDABLE, values)
    share = (l0 - m1) / (l0 - s1)
    values["share"] = share
    measured = (f"loss {l0:.4f} at the switch → {label} {m1:.4f}, {base} {s1:.4f} {span}: "
                f"{label} made {share:.0%} of {base}'s decrease")
    ok = share < STALLED if mode == "dom" else share >= KEEPS_PACE
    return Claim(key, text, criterion, measured, YES if ok else NO, values)


# ---------------------------------------------------------------------------- the removed part
def removed_quantity(result: RunResult) -> tuple[str | None, str]:
    """The logged column that measures χ of the vector the projection acts on in the Bulk branch
    (``alignment_base_update``; runs made before the engine logged it: ``alignment_batch``, the
    same vector for SGD-type rules and ``project_on="gradient"``), and that vector in words.
    ``(None, why)`` when it was not logged."""
    cfg = result.config
    logged = any(is_finite(r.get("alignment_base_update")) for r in result.main_rows("bulk"))
    if cfg.optimizer in ("momentum", "adam") and cfg.project_on == "update":
        if logged:
            return "alignment_base_update", f"the unprojected {cfg.label('none')} update"
        return None, (f"the projection acts on {cfg.label('none')}'s update, whose unprojected value this run "
                      "did not log (metric alignment_base_update); χ of the gradient would measure something else")
    what = {"gd": "full-batch gradient", "sam": "SAM gradient (at the ascent point)"}.get(cfg.optimizer,
                                                                                       "minibatch gradient")
    if cfg.optimizer in ("momentum", "adam"):
        what += f" fed to {cfg.label('none')} (the projection acts on it)"
    return ("alignment_base_update" if logged else "alignment_batch"), what


def removed_part_claim(result: RunResult) -> Claim:
    cfg = result.config
    text = f"The dominant part that {cfg.label('bulk')} removes carries most of the update"
    criterion = f"mean of χ² = ‖P_k v‖² / ‖v‖² over {cfg.label('bulk')}'s rows after the switch > {MOST_OF_NORM:g}"
    column, what = removed_quantity(result)
    if column is None:
        return Claim("removed_part", text, criterion, what, UNDECIDABLE, {})
    chis = [r[column] for r in result.main_rows("bulk", column)]
    if not chis:
        return Claim("removed_part", text, criterion, f"{column} not logged after the switch", UNDECIDABLE, {})
    f2 = statistics.fmean(c * c for c in chis)
    values = {"column": column, "mean_chi_squared": f2, "mean_chi": statistics.fmean(chis), "rows": len(chis)}
    measured = (f"v = the {what}: mean ‖P_k v‖² / ‖v‖² = {f2:.2f} (mean χ = {values['mean_chi']:.2f}, "
                f"{len(chis)} rows)")
    return Claim("removed_part", text, criterion, measured, YES if f2 > MOST_OF_NORM else NO, values)


# ---------------------------------------------------------------------------- output
def claims_markdown(items: list[Claim], *, criteria: bool = True) -> str:
    """A markdown table: claim, measured, verdict (and the criterion, unless ``criteria=False``)."""
    head = "| claim (paper, Section 3) | " + ("criterion | " if criteria else "") + "measured in this run | verdict |"
    lines = [head, "|---|" + ("---|" if criteria else "") + "---|---|"]
    for c in items:
        verdict = c.verdict if c.verdict == YES else f"**{c.verdict}**"
        lines.append(f"| {c.claim} | " + (f"{c.criterion} | " if criteria else "") + f"{c.measured} | {verdict} |")
    return "\n".join(lines)


def claims_bullets(items: list[Claim], label: str = "") -> str:
    """Markdown bullets ``- claim: **verdict** (measured)``, for prose rendered from a run;
    ``label`` (e.g. the run's name) prefixes each bullet."""
    prefix = f"{label}: " if label else ""
    return "\n".join(f"- {prefix}{c.claim}: **{c.verdict}** ({c.measured})" for c in items)


def verdicts(items: list[Claim]) -> dict[str, str]:
    """``{claim key: verdict}``, e.g. ``{"dom_stall": "no", ...}``."""
    return {c.key: c.verdict for c in items}


def write_report(result: RunResult, out_dir) -> dict[str, Path]:
    """Write into ``out_dir``: the headline figure (``headline.html``, and slide-ready
    ``headline.png`` / ``headline.svg``), the three-panel figure (``figure.html``, ``figure.png``)
    and the claims table (``claims.md``). Returns the paths by name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / "figure.html", "png": out / "figure.png", "claims": out / "claims.md",
             "headline_html": out / "headline.html"}
    headline_figure(result).write_html(paths["headline_html"], include_plotlyjs=True)
    paths.update({f"headline_{kind}": path for kind, path in save_headline(result, out / "headline").items()})
    figure(result).write_html(paths["html"], include_plotlyjs=True)
    save_png(result, paths["png"])
    table = claims_markdown(claims(result))
    paths["claims"].write_text(f"Run `{result.path}` ({result.status}).\n\n{table}\n")
    return paths
