"""One experiment, from config to metrics on disk: the paper's switch protocol.

Phase 1 runs the base optimizer without projection until the switch (a fixed step, or the
replication's rule, ``switch.SwitchRule``). Phase 2 forks one trajectory per requested mode from
the *same* parameters, optimizer state and minibatch stream and advances them in lock-step, so
SGD, Dom-SGD and Bulk-SGD share their history up to the switch and their curves grow side by side.

Cadences (``refresh_kind``): projected trajectories refresh their basis (warm-started tracker on the Hessian of the
first ``hessian_samples`` training samples) every ``refresh_every`` steps; unprojected ones
(phase 1 and mode ``none``) measure it every ``switch_check_every`` steps, so their
``alignment_full`` is logged at those steps only. Metrics are logged every ``log_every`` steps,
*before* the step at that index is applied.

``iter_run`` yields metric rows as they are logged and writes them to the run store. A finished
config is answered from the store, an interrupted one resumes from its checkpoint, and a run whose
phase 1 is already stored as a switch point (``switch_point.py``) starts at the switch.
Every file is read and written through ``RunFiles`` (``run_files.py``).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

from ..threads import engine_threads
from .checkpoint import FORMAT, Checks, check_trajectory, from_arrays, to_arrays
from .config import RunConfig
from .metrics import columns, complete
from .problem import Problem, trainable
from .results import RunResult
from .run_files import FINISHED, RunFiles, as_store
from .switch import SwitchRule
from .switch_point import SwitchPoint
from .trajectory import RunDiverged, Trajectory

__all__ = ["iter_run", "run", "columns", "RunState", "RunDiverged", "FINISHED"]


# ---------------------------------------------------------------------------- the run's state
@dataclass
class RunState:
    """Where a run is: step ``t``, the switch (``None`` in phase 1), the base trajectory (phase 1)
    or one trajectory per mode (phase 2), the switch rule, and counters. Its ``state_dict`` is the
    checkpoint (the keys of each trajectory are ``Trajectory.state_dict``'s)."""

    cfg: RunConfig
    threads: int
    base: Trajectory | None = None
    branches: list[Trajectory] = field(default_factory=list)
    t: int = 0
    switch_step: int | None = None
    switch_reason: str = ""
    rule: SwitchRule = field(default_factory=SwitchRule)
    phase1_hvps: int = 0  # HVPs of the shared phase 1, counted once in the summary
    wall0: float = 0.0  # seconds spent before this process took over (resume, switch point)
    phase1_source: str = ""  # the switch point this run started from, if any
    started: float = field(default_factory=time.perf_counter)

    @classmethod
    def fresh(cls, problem: Problem, threads: int) -> "RunState":
        cfg = problem.cfg
        return cls(cfg, threads, base=Trajectory.start(problem),
                   rule=SwitchRule(cfg.switch_threshold, cfg.switch_ema))

    @classmethod
    def at_switch_point(cls, problem: Problem, point: SwitchPoint) -> "RunState":
        """Phase 1 done: the state a run that replayed it would have at its switch."""
        state = cls.fresh(problem, point.threads)
        state.base.load_state_dict(point.base)
        state.rule.load_state_dict(point.rule)
        state.t = state.switch_step = point.t
        state.switch_reason, state.wall0, state.phase1_hvps = point.switch_reason, point.wall, point.phase1_hvps
        state.phase1_source = point.source
        return state

    def wall(self) -> float:
        return self.wall0 + time.perf_counter() - self.started

    @property
    def live(self) -> list[Trajectory]:
        return self.branches or [self.base]

    def fork(self, problem: Problem) -> None:
        """Phase 2 begins: one trajectory per mode from the base trajectory."""
        self.phase1_hvps = self.base.hvps
        self.branches = [self.base.fork(problem, mode) for mode in self.cfg.modes]
        self.base = None

    def switch_point(self, rows: list[dict]) -> SwitchPoint:
        return SwitchPoint(self.t, self.switch_reason, self.wall(), self.base.hvps, self.threads,
                           self.rule.state_dict(), self.base.state_dict(with_basis=False),
                           [r for r in rows if r["phase"] == "warmup"])

    def state_dict(self) -> dict:
        if self.branches:
            trajectories = {"branches": {br.mode: br.state_dict() for br in self.branches}}
        else:
            trajectories = {"base": self.base.state_dict()}
        return {"format": FORMAT, "t": self.t, "wall": self.wall(), "threads": self.threads,
                "switch_step": -1 if self.switch_step is None else self.switch_step,
                "switch_reason": self.switch_reason, "phase1_hvps": self.phase1_hvps,
                "phase1_source": self.phase1_source,
                "rule": self.rule.state_dict(), **trajectories}

    def load_state_dict(self, problem: Problem, arrays: dict, path) -> None:
        """Resume from checkpoint arrays (validated first; ``CheckpointError`` names the file)."""
        check_checkpoint(Checks(path, arrays), self.cfg, sum(p.numel() for p in trainable(problem.template)))
        state = from_arrays(arrays)
        self.t, self.wall0 = int(state["t"]), float(state["wall"])
        self.rule.load_state_dict(state["rule"])
        self.switch_reason, self.phase1_hvps = str(state["switch_reason"]), int(state["phase1_hvps"])
        self.phase1_source = str(state.get("phase1_source", ""))
        if int(state["switch_step"]) >= 0:
            self.switch_step, self.base = int(state["switch_step"]), None
            self.branches = [Trajectory.start(problem, mode) for mode in self.cfg.modes]
            for br in self.branches:
                br.load_state_dict(state["branches"][br.mode])
        else:
            self.base.load_state_dict(state["base"])


def check_checkpoint(checks: Checks, cfg: RunConfig, num_params: int) -> None:
    """Every field of a run checkpoint: layout version, counters, each trajectory's tensors."""
    if "format" not in checks.arrays or checks.integer("format") != FORMAT:
        checks.fail("format", f"must be {FORMAT} (this checkpoint was written by an older kit)")
    t = checks.integer("t", 0)
    switch_step = checks.integer("switch_step", -1)
    if switch_step > t:
        checks.fail("switch_step", f"is after the checkpoint's step t={t}")
    checks.number("wall")
    checks.integer("threads", 1)
    checks.integer("phase1_hvps")
    checks.text("switch_reason")
    checks.text("phase1_source")
    checks.integer("rule.checks")
    checks.real("rule.ema")
    for prefix in (["base."] if switch_step < 0 else [f"branches.{m}." for m in cfg.modes]):
        check_trajectory(checks, prefix, num_params, cfg.dtype, cfg.k)


# ---------------------------------------------------------------------------- one session
class Session:
    """One process's part of a run: the state, its files, the stop event and the progress bar.
    ``emit`` is the one place a row is stamped and written; ``pause`` the one place a run
    checkpoints or stops; ``finish`` the one place the summary is written."""

    def __init__(self, state: RunState, problem: Problem, files: RunFiles, stop, progress: bool):
        self.state, self.problem, self.files, self.stop = state, problem, files, stop
        self.cfg = state.cfg
        self.stopped = False
        self.bar = None
        if progress:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=self.cfg.steps, initial=state.t, desc=f"{self.cfg.label('none')} run", unit="step")
        self.summary = {"status": "running", "config_key": self.cfg.key(), "threads": state.threads,
                        "num_parameters": sum(p.numel() for p in trainable(problem.template)),
                        "labels": {m: self.cfg.label(m) for m in self.cfg.modes}}
        if self.cfg.switch == "rule":
            self.summary["switch_rule"] = SwitchRule.FORM
        if state.phase1_source:  # phase 1 (rows, wall seconds included) was read, not computed
            self.summary["phase1_from"] = state.phase1_source

    def emit(self, row: dict, phase: str) -> dict:
        row = complete({**row, "phase": phase, "wall": round(self.state.wall(), 4)}, self.cfg)
        self.files.write_row(row)
        return row

    def advance(self) -> None:
        self.state.t += 1
        if self.bar:
            self.bar.update(1)

    def pause(self) -> bool:
        """At the start of a step: checkpoint when due; on ``stop``, checkpoint, record
        ``stopped`` and return ``True``."""
        state = self.state
        if self.stop is not None and self.stop.is_set():
            self.files.save_checkpoint(to_arrays(state.state_dict()))
            self.finish("stopped", f"stopped at step {state.t}")
            self.stopped = True
            return True
        since = state.switch_step if state.switch_step is not None else 0
        if state.t % self.cfg.checkpoint_every == 0 and state.t > since:
            self.files.save_checkpoint(to_arrays(state.state_dict()))
        return False

    def finish(self, status: str, message: str = "") -> None:
        state = self.state
        for tr in state.live:
            if tr.status == "running":
                tr.status = "completed" if status in FINISHED else status
        branches = state.branches
        # Forked trajectories start with phase 1's count: count the shared part once.
        hvps = (sum(b.hvps - state.phase1_hvps for b in branches) + state.phase1_hvps) if branches else state.base.hvps
        last = {}
        for row in self.files.rows():
            last[row["mode"] if row["phase"] == "main" else "warmup"] = row["train_loss"]
        self.summary.update(status=status, message=message, steps_done=state.t, switch_step=state.switch_step,
                            switch_reason=state.switch_reason, wall_seconds=round(state.wall(), 3), hvps=hvps,
                            modes={t.mode: {"status": t.status, "message": t.message} for t in state.live},
                            final_train_loss=last)
        self.files.write_summary(self.summary)
        if status in FINISHED:
            self.files.drop_checkpoint()

    def close(self) -> None:
        if self.bar:
            self.bar.close()


# ---------------------------------------------------------------------------- the two phases
def phase1(s: Session) -> Iterator[dict]:
    """The base optimizer until the switch (or the end of the run)."""
    state, cfg = s.state, s.cfg
    if state.switch_step is not None:  # resumed in phase 2, or started at a switch point
        return
    while state.switch_step is None and state.t < cfg.steps:
        if s.pause():
            return
        t = state.t
        measure = t % cfg.switch_check_every == 0 or (cfg.switch == "step" and t == cfg.switch_step)
        if cfg.switch == "step" and t >= cfg.switch_step:
            state.switch_step, state.switch_reason = t, "fixed step"
            break
        if cfg.switch == "rule" and cfg.max_switch_step is not None and t >= cfg.max_switch_step:
            state.switch_step, state.switch_reason = t, f"rule did not fire by max_switch_step={cfg.max_switch_step}"
            break
        row = state.base.step(s.problem, t, refresh=measure, log=t % cfg.log_every == 0, measure=measure)
        if measure and cfg.switch == "rule" and state.rule.update(row.get("alignment_full", float("nan"))):
            state.switch_step = t + 1
            state.switch_reason = f"rule fired (EMA of alignment, from the first check, > {cfg.switch_threshold})"
        if row is not None:
            yield s.emit(row, "warmup")
        s.advance()
    if state.switch_step is None:
        state.switch_step, state.switch_reason = state.t, "end of run before the switch"
    elif state.t < cfg.steps:
        s.files.save_switch_point(state.switch_point(s.files.rows()))


def phase2(s: Session) -> Iterator[dict]:
    """Every mode from the switch, in lock-step; a trajectory that blows up ends on its own."""
    state, cfg = s.state, s.cfg
    if not state.branches:
        state.fork(s.problem)
    while state.t < cfg.steps:
        if s.pause():
            return
        t, since = state.t, state.t - state.switch_step
        measure = since % cfg.switch_check_every == 0
        certify = cfg.refresh_method == "rotate" and since % cfg.certify_every == 0
        log = since % cfg.log_every == 0 or t == cfg.steps - 1 or certify
        for br in state.branches:
            if br.status != "running":
                continue
            refresh = refresh_kind(cfg, br.mode, since, measure)
            try:
                row = br.step(s.problem, t, refresh=refresh, log=log, measure=measure)
            except RunDiverged as exc:
                br.status, br.message = "diverged", str(exc)
                continue
            if row is not None:
                yield s.emit(row, "main")
        s.advance()
        if all(br.status != "running" for br in state.branches):
            break


def refresh_kind(cfg: RunConfig, mode: str, since: int, measure: bool) -> str | None:
    """The refresh a phase-2 trajectory of ``mode`` makes ``since`` steps after the switch
    (``Trajectory.refresh``'s ``how``, or ``None``): an unprojected one only where alignment is
    measured; a projected one every ``refresh_every`` steps, and with ``refresh_method="rotate"``
    a certification every ``certify_every`` steps (the first one at the switch)."""
    if mode == "none":
        return "full" if measure else None
    if cfg.refresh_method == "rotate" and since % cfg.certify_every == 0:
        return "certify"
    return cfg.refresh_method if since % cfg.refresh_every == 0 else None


# ---------------------------------------------------------------------------- the protocol
def iter_run(cfg: RunConfig, *, store=None, stop: threading.Event | None = None, resume: bool = True,
             progress: bool = False, share_phase1: bool = True) -> Iterator[dict]:
    """Run (or read back) the experiment ``cfg``, yielding metric rows as they are logged.

    ``store``: run-store folder or ``RunStore`` (default ``paths.user_store()``). ``stop``: a
    ``threading.Event``; when set, the run checkpoints, is marked ``stopped`` and the generator
    returns (the rows so far are kept; asking again resumes and yields only the new rows). A
    finished config (``completed`` or ``diverged``) is answered from the store at once.
    ``share_phase1``: start from a stored switch point when there is one (in ``store`` or the
    shipped runs; its phase-1 rows are yielded first) and save one at the switch otherwise.
    Any other error ends the run as ``failed`` with its message, then propagates. Every yielded
    row has all of ``columns(cfg)`` (NaN where a metric was not measured), as the store reads it.
    Runs inside ``threads.engine_threads()``.
    """
    files = RunFiles(as_store(store), cfg)
    finished = files.finished()
    if finished is None:
        with engine_threads() as threads:
            problem = Problem.build(cfg)  # before the lock: a refused setting leaves nothing on disk
            with files.lock():  # one writer per run folder; another may have finished it meanwhile
                finished = files.finished()
                if finished is None:
                    state, replay = start(problem, files, threads, resume, share_phase1)
                    yield from supervise(Session(state, problem, files, stop, progress), replay)
                    return
    yield from finished.rows


def supervise(session: Session, replay: list[dict]) -> Iterator[dict]:
    """Write the rows of a switch point (``replay``, as logged), run the two phases, and end the
    run with a status whatever happens: ``completed`` / ``diverged`` (a trajectory blew up),
    ``stopped`` (``stop``, Ctrl-C, a closed generator) or ``failed`` (any other error, raised on)."""
    state, files = session.state, session.files
    try:
        files.write_summary(session.summary)
        for row in replay:
            yield files.write_row(row)
        for phase in (phase1, phase2):
            yield from phase(session)
            if session.stopped:
                return
        diverged = [br.message for br in state.live if br.status == "diverged"]
        session.finish("diverged" if diverged else "completed", " ".join(diverged))
    except RunDiverged as exc:  # phase 1 diverged: nothing to continue from
        state.base.status, state.base.message = "diverged", str(exc)
        session.finish("diverged", str(exc))
    except Exception as exc:
        session.finish("failed", f"{type(exc).__name__}: {exc}")
        raise
    except BaseException:  # interrupted: the last checkpoint stands
        session.finish("stopped", f"interrupted at step {state.t}; resumes from the last checkpoint")
        raise
    finally:
        files.close()
        session.close()


def start(problem: Problem, files: RunFiles, threads: int, resume: bool,
          share_phase1: bool) -> tuple[RunState, list[dict]]:
    """The state the run starts from, and the stored rows to replay: from its checkpoint
    (``resume``), else from a switch point (``share_phase1``), else from step 0."""
    cfg = problem.cfg
    state = RunState.fresh(problem, threads)
    checkpoint = files.load_checkpoint() if resume else None
    if checkpoint is not None:
        arrays, path = checkpoint
        saved = Checks(path, arrays).integer("threads", 1) if "threads" in arrays else threads
        if saved != threads:
            raise ValueError(f"{path} was written by a run with {saved} torch threads and this process uses "
                             f"{threads}: set SUBSPACE_KIT_THREADS={saved} to resume it, or run with resume=False")
        state.load_state_dict(problem, arrays, path)
        files.open(keep_until=((0 if state.switch_step is None else 1), state.t - 1))
        return state, []
    point = files.find_switch_point(threads, problem) if share_phase1 else None
    files.open(keep_until=None)
    if point is None or point.t >= cfg.steps:
        return state, []
    return RunState.at_switch_point(problem, point), point.rows


def run(cfg: RunConfig, *, store=None, stop: threading.Event | None = None, resume: bool = True,
        progress: bool = False, on_row: Callable[[dict], None] | None = None, share_phase1: bool = True) -> RunResult:
    """Run ``cfg`` to the end (or until ``stop``) and return it as stored."""
    for row in iter_run(cfg, store=store, stop=stop, resume=resume, progress=progress, share_phase1=share_phase1):
        if on_row is not None:
            on_row(row)
    return RunFiles(as_store(store), cfg).result()
