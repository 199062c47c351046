"""Run a grid's nodes (see `train.grid`): resumable, `jobs` at once, one progress bar.

Each node is a one-stage recipe (`nodes/<label>/recipe.yaml`) run by the ordinary runner, in a
worker process with `threads` torch threads (or, with `launcher`, as `LAUNCHER -m parallel_r1
run recipe.yaml`, e.g. under accelerate on GPUs). Its output goes to `nodes/<label>/log.txt`; the
terminal shows one bar across all nodes. A node the runner recorded as done is never run again,
and an unfinished one resumes from its last checkpoint, so after a kill (even -9) a rerun redoes
nothing that finished. Workers die with the grid process (Linux: PR_SET_PDEATHSIG), so a killed
grid leaves no orphan writing into a node. One grid process per folder (`grid.lock`).
Nodes start in critical-path order: the ready node with the longest estimated chain below it first.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import fcntl
import json
import multiprocessing
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from parallel_r1.errors import ParallelR1Error
from parallel_r1.files import command_line, holder, write_text_atomic
from parallel_r1.outputs import claim, mark
from parallel_r1.train.grid import Grid, Node, Plan, is_done, node_dir, node_recipe, stage_dir

STATE_FILE, LOCK_FILE = "grid-state.json", ".parallel-r1.lock"  # the lock run and eval take
# Rough seconds per unit on one CPU thread with the tiny model (only for ordering and the bar).
COST = {"sft": 0.012, "rl": 0.05, "eval": 0.03}


class GridLocked(ParallelR1Error):
    """Another grid process is writing into the same folder."""


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            return
        if os.getppid() == 1:  # the parent died before the call
            os._exit(1)


def _init_worker(threads: int | None) -> None:
    from parallel_r1.cpu_threads import use_threads

    _die_with_parent()
    os.environ.update(PARALLEL_R1_PROGRESS="0", TRL_EXPERIMENTAL_SILENCE="1")
    import torch  # noqa: F401 (use_threads sets the count of a loaded torch)

    use_threads(threads)


def run_node(folder: str) -> float:
    """Run the one-stage recipe in `folder` with the ordinary runner, output to its log.txt.

    Returns:
        seconds taken.
    """
    from parallel_r1.train.recipe import load
    from parallel_r1.train.runner import run

    started = time.monotonic()
    sys.stdout.flush(), sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(Path(folder) / "log.txt", "a", encoding="utf-8") as log:
        os.dup2(log.fileno(), 1), os.dup2(log.fileno(), 2)
        try:
            run(load(Path(folder) / "recipe.yaml"))
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])
    return time.monotonic() - started


def launch_node(folder: str, launcher: str, threads: int | None) -> float:
    """Run the node's recipe as `LAUNCHER -m parallel_r1 run recipe.yaml` (output to log.txt).

    Raises:
        ParallelR1Error: the command failed (the message points at the log).
    """
    started = time.monotonic()
    from parallel_r1.cpu_threads import THREADS_ENV, thread_count

    env = {**os.environ, THREADS_ENV: str(thread_count(threads)), "PARALLEL_R1_PROGRESS": "0",
           "TRL_EXPERIMENTAL_SILENCE": "1"}
    cmd = [*shlex.split(launcher), "-m", "parallel_r1", "run", str(Path(folder) / "recipe.yaml")]
    with open(Path(folder) / "log.txt", "a", encoding="utf-8") as log:
        code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                               preexec_fn=_die_with_parent)
    if code:
        raise ParallelR1Error(f"'{' '.join(cmd)}' exited with {code}")
    return time.monotonic() - started


def node_cost(node: Node) -> float:
    """Estimated seconds of a node (ordering and the progress bar only)."""
    s = node.stage
    if s.kind == "eval":
        benches = str(s.eval.get("benchmarks", "")).count(",") + 1
        return COST["eval"] * benches * (s.eval.get("limit") or 100) * (s.eval.get("samples") or 4)
    steps = max(s.max_steps, 1) * s.per_device_batch_size * s.gradient_accumulation_steps
    return COST[s.kind] * steps * (s.max_tokens / 200 if s.kind == "rl" else 1)


def node_progress(grid: Grid, node: Node) -> float:
    """Share of a running node done, read from its files (0 when unknown)."""
    out, s = stage_dir(grid, node), node.stage
    try:
        if s.kind == "rl" and (out / "metrics.jsonl").is_file():
            steps = [json.loads(line).get("step", 0) for line in
                     (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
            return min(max(steps, default=0) / s.max_steps, 1.0)
        if s.kind == "sft" and s.max_steps > 0:
            done = [int(p.name.rsplit("-", 1)[1]) for p in out.glob("checkpoint-*")]
            return min(max(done, default=0) / s.max_steps, 1.0)
        if s.kind == "eval" and (out / "samples.jsonl").is_file() and s.eval.get("limit"):
            want = (str(s.eval.get("benchmarks", "")).count(",") + 1) * s.eval["limit"] * (
                s.eval.get("samples") or 4)
            return min(len((out / "samples.jsonl").read_bytes().splitlines()) / want, 1.0)
    except (OSError, ValueError):
        return 0.0
    return 0.0


def critical_path(plan_: Plan) -> dict[str, float]:
    """Per node: its cost plus the longest estimated chain of nodes that start from it."""
    children: dict[str, list[str]] = {}
    for key, node in plan_.nodes.items():
        children.setdefault(node.parent or "", []).append(key)
    memo: dict[str, float] = {}

    def below(key: str) -> float:
        if key not in memo:
            memo[key] = node_cost(plan_.nodes[key]) + max(
                (below(c) for c in children.get(key, [])), default=0.0)
        return memo[key]

    return {key: below(key) for key in plan_.nodes}


class _Lock:
    def __init__(self, folder: Path):
        claim(folder, command_line())  # a folder of ours, or refused before anything is written
        self.handle = open(folder / LOCK_FILE, "a+")  # noqa: SIM115 (held for the whole run)
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.seek(0)
            raise GridLocked(f"another parallel-r1 process ({holder(folder / LOCK_FILE)}) is "
                             f"writing into {folder}; wait for it or stop it") from None
        self.handle.truncate(0)
        self.handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                      "command": command_line(),
                                      "since": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")
        self.handle.flush()

    def release(self) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def code_version() -> str:
    """Source hash: sha256 (first 12 hex digits) of the installed parallel_r1/*.py files, not a
    git commit. Recorded per node: a node's key holds its settings, not the code, so the report
    says when nodes ran under different sources."""
    import hashlib

    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def git_commit() -> str | None:
    """The git commit of the sources ("2a873af", "+ changes" when files differ from it), or
    None outside a git checkout (an installed package)."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                                  text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return None
    return commit + (" + changes" if git("status", "--porcelain", "--", ".") else "")


def write_plan(grid: Grid, plan_: Plan) -> Path:
    """`plan.json`: each arm's node folders per seed, in order (what ran where)."""
    chains: dict[str, dict[str, list[str]]] = {}
    for (arm, seed), keys in plan_.chains.items():
        chains.setdefault(arm, {})[str(seed)] = [plan_.nodes[k].label for k in keys]
    return write_text_atomic(Path(grid.output_dir) / "plan.json",
                             json.dumps({"arms": chains}, indent=2) + "\n")


def _read_state(folder: Path) -> dict[str, Any]:
    path = folder / STATE_FILE
    return json.loads(path.read_text()) if path.is_file() else {"nodes": {}, "sessions": []}


class _Inline(cf.Executor):
    """Runs each node at submit, in this process (tests, debugging)."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> cf.Future:
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 (handed to the caller through the future)
            future.set_exception(exc)
        return future


def _executor(grid: Grid, inline: bool) -> cf.Executor:
    if inline:
        return _Inline()
    if grid.launcher:
        return cf.ThreadPoolExecutor(max_workers=grid.jobs)
    return cf.ProcessPoolExecutor(max_workers=grid.jobs, initializer=_init_worker,
                                  initargs=(grid.threads,),
                                  mp_context=multiprocessing.get_context("spawn"))


def run_grid(grid: Grid, plan_: Plan, *, progress: bool = True, inline: bool = False
             ) -> dict[str, Any]:
    """Run every unfinished node of `plan_`; returns the grid state (nodes' seconds, sessions).

    Args:
        inline: run the nodes one by one in this process (tests, debugging) instead of workers.

    Raises:
        GridLocked: another grid process holds the folder.
        ParallelR1Error: a node failed (the message names it and its log); finished nodes stay.
    """
    folder = Path(grid.output_dir)
    lock = _Lock(folder)
    try:
        return _run(grid, plan_, folder, progress, inline)
    finally:
        lock.release()


def _run(grid: Grid, plan_: Plan, folder: Path, progress: bool, inline: bool) -> dict[str, Any]:
    from tqdm.auto import tqdm

    state, started, code = _read_state(folder), time.monotonic(), code_version()
    write_plan(grid, plan_)
    session = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "wall_s": 0.0, "nodes_run": 0,
               "code": code, "git": git_commit()}
    state["sessions"].append(session)
    cost, priority = {k: node_cost(n) for k, n in plan_.nodes.items()}, critical_path(plan_)
    finished = {k for k, n in plan_.nodes.items() if is_done(grid, n)}
    pending = sorted(set(plan_.nodes) - finished, key=lambda k: -priority[k])
    bar = tqdm(total=round(sum(cost.values())), initial=round(sum(cost[k] for k in finished)),
               desc=f"grid {grid.name}", unit="est-s", disable=not progress, dynamic_ncols=True,
               mininterval=1 if sys.stderr.isatty() else 60,  # a log file gets a line a minute
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}")
    running: dict[cf.Future, str] = {}
    failure = None
    with _executor(grid, inline) as pool:
        while (pending and failure is None) or running:
            for key in [k for k in pending if plan_.nodes[k].parent in finished | {None}]:
                if len(running) >= grid.jobs or failure is not None:
                    break
                running[_submit(pool, grid, plan_, key)] = key
                pending.remove(key)
            done, _ = cf.wait(running, timeout=1.0, return_when=cf.FIRST_COMPLETED)
            for future in done:
                key = running.pop(future)
                node = plan_.nodes[key]
                try:
                    seconds = future.result()
                except Exception as exc:  # noqa: BLE001 (reported below with the node's log)
                    failure = failure or (node, exc)
                    continue
                finished.add(key)
                state["nodes"][node.label] = {"seconds": round(seconds, 1), "code": code,
                                              "kind": node.stage.kind}
                session["nodes_run"] += 1
                session["wall_s"] = round(time.monotonic() - started, 1)
                write_text_atomic(folder / STATE_FILE, json.dumps(state, indent=2) + "\n")
            _show(bar, grid, plan_, cost, finished, running)
    bar.close()
    session["wall_s"] = round(time.monotonic() - started, 1)
    write_text_atomic(folder / STATE_FILE, json.dumps(state, indent=2) + "\n")
    if failure is not None:
        node, exc = failure
        raise ParallelR1Error(f"node {node.label} ({node.stage.kind}, seed {node.seed}) failed: "
                              f"{exc}; see {node_dir(grid, node) / 'log.txt'}") from exc
    return state


def _submit(pool: cf.Executor, grid: Grid, plan_: Plan, key: str) -> cf.Future:
    node = plan_.nodes[key]
    folder = mark(node_dir(grid, node))  # made by this grid, in its own folder
    write_text_atomic(folder / "recipe.yaml",
                      yaml.safe_dump(node_recipe(grid, plan_, node), sort_keys=False))
    if grid.launcher:
        return pool.submit(launch_node, str(folder), grid.launcher, grid.threads)
    return pool.submit(run_node, str(folder))


def _show(bar: Any, grid: Grid, plan_: Plan, cost: dict[str, float], finished: set[str],
          running: dict[cf.Future, str]) -> None:
    shares = {k: node_progress(grid, plan_.nodes[k]) for k in running.values()}
    names = ", ".join(f"{plan_.nodes[k].stage.name}/s{plan_.nodes[k].seed} {100 * s:.0f}%"
                      for k, s in shares.items())
    bar.set_postfix_str(f"{len(finished)}/{len(plan_.nodes)} nodes; {names}", refresh=False)
    done = round(sum(cost[k] for k in finished) + sum(cost[k] * s for k, s in shares.items()))
    bar.update(max(done - bar.n, 0))  # prints at most every `mininterval`
    if not bar.disable and sys.stderr.isatty():
        bar.refresh()  # keep the clock moving on a terminal


def arm_runs(grid: Grid, plan_: Plan) -> list[Any]:
    """Each arm's result locations (`eval.grid_report.ArmRuns`) from the plan."""
    from parallel_r1.eval.grid_report import ArmRuns

    out = []
    for arm in grid.arms:
        evals, rl = {}, {}
        for seed in grid.seeds:
            chain = [plan_.nodes[k] for k in plan_.chains[(arm.name, seed)]]
            evals[seed] = stage_dir(grid, plan_.nodes[plan_.result(arm.name, seed)])
            rl[seed] = [(stage_dir(grid, n), n.stage.max_steps, n.stage.data)
                        for n in chain if n.stage.kind == "rl"]
        out.append(ArmRuns(arm.name, arm.title, evals, rl))
    return out


def report_grid(grid: Grid, plan_: Plan, state: dict[str, Any] | None = None,
                out: str | Path | None = None) -> dict[str, Any]:
    """Write the grid's comparison (tables, figures, report.md) into `out` (OUTPUT_DIR/report).

    Raises:
        DataError: an arm's eval is missing (run the grid first) or cannot be paired.
    """
    from parallel_r1.eval.grid_report import write_grid_report

    state = state or _read_state(Path(grid.output_dir))
    codes = {state["nodes"].get(n.label, {}).get("code", "?") for n in plan_.nodes.values()}
    gits = {s["git"] for s in state["sessions"] if s.get("git")}
    timing = {"wall_s": sum(s["wall_s"] for s in state["sessions"]),
              "source_hash": sorted(codes), "git": sorted(gits),
              "sessions": len(state["sessions"]), "nodes": len(plan_.nodes),
              "compute_s": sum(state["nodes"].get(n.label, {}).get("seconds", 0.0)
                               for n in plan_.nodes.values())}
    out = claim(out, command_line()) if out else Path(grid.output_dir) / "report"
    return write_grid_report(out, arm_runs(grid, plan_), grid.baseline, seeds=list(grid.seeds),
                             grader=grid.grader, name=grid.name, timing=timing,
                             endpoints=grid.endpoints, gates=grid.gates, alpha=grid.alpha,
                             claims=grid.claims)
