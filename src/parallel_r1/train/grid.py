"""A grid of experiments: arms (a recipe, a choice of its stages, overrides) times seeds.

A grid file names `seeds`, a `baseline` arm and `arms`; each arm is a recipe file (relative to
the grid file) or a chain of them (`[sft.yaml, rl.yaml]`: the stages of each in turn), optionally
the names of the stages to keep, and `key=value` overrides (a stage override goes to the file that
has that stage, any other to the first file).
`overrides` at the grid level apply to every arm after the arm's own (so they win; a stage
override is skipped for a recipe without that stage). Everything is checked up front by loading
every (arm, seed) recipe.

Each (arm, seed) is split into *nodes*, one per stage. A node's key is a hash of what decides its
computation: the stage's settings, the seed, the model settings, and its parent's key (the node
whose model it starts from; the root's model name). Two arms that begin with literally the same
stages under the same seed therefore share those nodes (e.g. one cold-start SFT for every RL arm
of a seed), and a node is computed once. A node runs as a one-stage recipe through the ordinary
runner (`train.runner.run`), whose model is its parent's output; this is exactly what the runner
does between the stages of one recipe, so a shared prefix gives the same numbers as the arm run
alone (tested). Pure Python + yaml; no torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parallel_r1.errors import ConfigError, unknown_name
from parallel_r1.outputs import output_path
from parallel_r1.train.grid_prereg import check_columns, check_prereg, check_trend_arms
from parallel_r1.train.recipe import Recipe, Stage, load
from parallel_r1.train.yaml_text import load_yaml

# `parallel-r1 grid --mini --quick`: the mini grid at the smallest sizes that run every node.
QUICK = ["seeds=[0, 1]", "overrides=" + json.dumps([
    "model.tiny_layers=2", "model.tiny_hidden=64",
    "stages.base.data=synthetic:fork1-3/plain:96:0", "stages.sft.data=synthetic:fork1:64:1",
    "stages.sft-plain.data=synthetic:fork1/plain:64:1",
    *(f"stages.{s}.max_steps=8" for s in ("base", "sft", "sft-plain")),
    *(f"stages.{s}.{k}={v}" for s in ("rl-easy", "rl-hard", "rl-hard-s2", "rl-hard-acc")
      for k, v in (("max_steps", 2), ("save_steps", 2), ("per_device_batch_size", 16),
                   ("max_tokens", 60), ("max_path_tokens", 20))),
    "stages.eval.eval={benchmarks: 'synthetic-fork1,synthetic-fork2', samples: 2, limit: 4, "
    "max_tokens: 60, max_path_tokens: 20, graders: [paper]}"])]
MINI_GRID = "mini-grid-v2"  # the folder of recipes/ that `--mini` runs (mini-grid: the trap task's)


def mini_grid_path(folder: str = MINI_GRID) -> Path:
    """The packaged mini grid (`recipes/<folder>/grid.yaml` inside the package)."""
    from importlib import resources

    return Path(str(resources.files("parallel_r1") / "recipes" / folder / "grid.yaml"))


def _f(default: Any, help: str) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class Arm:
    """One arm of a grid: a recipe (or a chain of recipes), stages to keep, overrides."""

    name: str = _f("", "short name (row label, folder names)")
    recipe: Any = _f("", "recipe file relative to the grid file, or a list of files run as one "
                         "chain (each starts from the model the one before produced)")
    title: str = _f("", "row title in the table (default: the name)")
    stages: list = _f([], "names of the recipe's stages to run, in order (default: all)")
    overrides: list = _f([], "key=value overrides of the recipe (after the grid's)")

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ConfigError(f"an arm needs a name without '/', got {self.name!r}",
                              field="arms.name")
        files = [self.recipe] if isinstance(self.recipe, str) else self.recipe
        if not isinstance(files, list) or not files or not all(
                isinstance(f, str) and f for f in files):
            raise ConfigError("an arm needs a recipe file or a list of them, got "
                              f"{self.recipe!r}", field=f"arms.{self.name}.recipe")
        self.title = self.title or self.name


@dataclass
class Grid:
    """A grid file: arms x seeds, the baseline arm, how nodes run, the comparison's grader."""

    name: str = _f("grid", "name of the grid")
    output_dir: str = _f("runs/grid", "grid folder: nodes/, report/, grid-state.json")
    seeds: list = _f([0, 1, 2], "seeds; each arm runs once per seed")
    baseline: str = _f("", "arm every paired delta is taken against")
    arms: list = _f([], "the arms (see Arm)")
    overrides: list = _f([], "key=value recipe overrides for every arm (after the arm's own)")
    jobs: int = _f(1, "nodes run at once (worker processes)")
    threads: Any = _f(None, "torch threads per worker (null: $OMP_NUM_THREADS, else 1)")
    launcher: str = _f("", "command prefix that runs a node's recipe (e.g. 'accelerate launch "
                           "--config_file recipes/accelerate/fsdp.yaml'); empty: worker processes")
    grader: str = _f("", "grader of the comparison (regraded from the samples); empty: each "
                         "eval's headline grader")
    endpoints: list = _f([], "pre-registered primary comparisons [{arm, column, against?, "
                             "gates?}] (train.grid_prereg); empty: every arm against the "
                             "baseline in every column")
    gates: dict = _f({}, "pre-registered design bounds (eval.grid_design.GATES): a comparison "
                         "that fails one is reported uninformative")
    alpha: float = _f(0.05, "family-wise error rate of the primary comparisons (Holm)")
    claims: list = _f([], "the paper's claims, each held / not held / uninformative "
                          "(train.grid_prereg, eval.grid_claims)")
    file: str = _f("", "where the grid was read from (set by load_grid)")

    def __post_init__(self) -> None:
        names = [a.name for a in self.arms]
        checks = [
            (bool(self.arms), "arms", "a grid needs at least one arm"),
            (len(set(names)) == len(names), "arms", f"arm names must be unique: {names}"),
            (self.baseline in names, "baseline", f"must be one of the arms {names}"),
            (bool(self.seeds) and len(set(self.seeds)) == len(self.seeds)
             and all(isinstance(s, int) for s in self.seeds), "seeds",
             "must be a non-empty list of distinct integers"),
            (type(self.jobs) is int and self.jobs >= 1, "jobs", "must be an integer >= 1"),
            (self.threads is None or (type(self.threads) is int and self.threads >= 1),
             "threads", "must be an integer >= 1 (or null: $OMP_NUM_THREADS, else 1)"),
        ]
        for ok, name, fix in checks:
            if not ok:
                raise ConfigError(f"{fix}, got {getattr(self, name)!r}", field=name,
                                  file=self.file or None)
        check_prereg(self)


@dataclass(frozen=True)
class Node:
    """One stage of one (arm, seed), keyed by content; shared by every arm that reaches it."""

    key: str
    stage: Stage
    seed: int
    model: dict        # ModelSpec fields; `name` is the root model (a parent's output replaces it)
    parent: str | None  # key of the node whose model this one starts from

    @property
    def label(self) -> str:
        """Folder name: the stage name and the key's start."""
        return f"{self.stage.name}-{self.key[:12]}"


@dataclass
class Plan:
    """Nodes by key, and each (arm, seed)'s chain of node keys (its last eval is its result)."""

    nodes: dict[str, Node]
    chains: dict[tuple[str, int], list[str]]
    recipes: dict[tuple[str, int], Recipe]

    def result(self, arm: str, seed: int) -> str:
        """Key of the last eval node of (arm, seed)."""
        return [k for k in self.chains[(arm, seed)] if self.nodes[k].stage.kind == "eval"][-1]


def load_grid(path: str | Path, overrides: list[str] | None = None) -> Grid:
    """Read a grid file, apply grid-level `key=value` overrides (seeds=[0,1], jobs=2, ...).

    Raises:
        ConfigError: unreadable file, unknown key, bad value (named, with the file).
    """
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read grid: {exc}", file=file) from None
    tree = load_yaml(text, file)[0] or {}  # bounded whatever the YAML (aliases, nesting)
    if not isinstance(tree, dict):
        raise ConfigError("a grid file holds a mapping", file=file)
    if "stages" in tree and "arms" not in tree:
        raise ConfigError(f"this is a recipe (it has stages, no arms); run it with: "
                          f"parallel-r1 run {file}", file=file)
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or key not in {f.name for f in dataclasses.fields(Grid)} or key == "arms":
            raise ConfigError(f"override '{item}' is not KEY=VALUE with a grid key other than "
                              "arms", field=key or item)
        try:
            tree[key] = load_yaml(raw, "")[0]
        except ConfigError as exc:
            raise ConfigError(f"override value {raw!r}: {exc}", field=key) from None
    arms = tree.get("arms") or []
    if not isinstance(arms, list):
        raise ConfigError("must be a list of arms", field="arms", file=file)
    tree["arms"] = [_build(Arm, a, f"arms.{i}", file) for i, a in enumerate(arms)]
    grid = _build(Grid, {**tree, "file": file}, "", file)
    grid.output_dir = str(output_path(grid.output_dir))  # one name for the folder: `~` expanded
    return grid


def _build(cls: type, data: Any, where: str, file: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping, got {type(data).__name__}", field=where, file=file)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            raise ConfigError(unknown_name("key", key, known),
                              field=f"{where}.{key}" if where else key, file=file)
    try:
        return cls(**data)
    except ConfigError as exc:
        raise ConfigError(str(exc).split(": ", 1)[-1], field=exc.field, file=file) from None
    except TypeError as exc:
        raise ConfigError(str(exc), field=where or None, file=file) from None


def _stage_names(path: Path, arm: Arm, grid: Grid) -> list[str]:
    try:
        return [s.get("name", s.get("kind")) for s in
                (load_yaml(path.read_text(encoding="utf-8"), str(path))[0] or {}).get("stages", [])]
    except ConfigError:
        raise
    except (OSError, UnicodeDecodeError, AttributeError) as exc:
        raise ConfigError(f"cannot read recipe {path}: {exc}", field=f"arms.{arm.name}.recipe",
                          file=grid.file or None) from None


def _routed(overrides: list[str], names: list[str], first: bool) -> list[str]:
    """The overrides that apply to one recipe of a chain: stage ones by stage name, the rest to
    the first recipe (the chain's model, seed and name)."""
    return [o for o in overrides
            if (o.split(".")[1] in names if o.startswith("stages.") else first)]


def arm_recipe(grid: Grid, arm: Arm, seed: int) -> Recipe:
    """The recipe of (arm, seed): its file(s), the arm's then the grid's overrides, the seed, the
    arm's stages. A list of files is one chain: the stages of each in order, starting from the
    first file's model (a later file's model is replaced by the chain's).

    Raises:
        ConfigError: a recipe fails its checks; an arm override or `stages` names a stage none of
            its files has; chained files disagree on model settings other than the name.
    """
    files = [arm.recipe] if isinstance(arm.recipe, str) else list(arm.recipe)
    paths = [Path(grid.file).parent / f if grid.file else Path(f) for f in files]
    names = [_stage_names(p, arm, grid) for p in paths]
    known = {n for ns in names for n in ns}
    stray = [o for o in arm.overrides if o.startswith("stages.") and o.split(".")[1] not in known]
    if stray:
        raise ConfigError(f"override {stray[0]!r} names no stage of {files}; stages: "
                          f"{sorted(known)}", field=f"arms.{arm.name}.overrides",
                          file=grid.file or None)
    recipes = [load(p, [*_routed(arm.overrides, ns, i == 0), *_routed(grid.overrides, ns, i == 0),
                        f"seed={seed}"]) for i, (p, ns) in enumerate(zip(paths, names))]
    recipe = recipes[0]
    for other, path in zip(recipes[1:], paths[1:]):
        mine, theirs = (dataclasses.replace(r.model, name="") for r in (recipe, other))
        if mine != theirs:
            raise ConfigError(f"{path} sets other model settings than {paths[0]} "
                              f"({theirs} vs {mine})", field=f"arms.{arm.name}.recipe",
                              file=grid.file or None)
    stages = [st for r in recipes for st in r.stages]
    if arm.stages:
        by_name = {st.name: st for st in stages}
        missing = [n for n in arm.stages if n not in by_name]
        if missing:
            raise ConfigError(f"no stage {missing} in {files}; they have {list(by_name)}",
                              field=f"arms.{arm.name}.stages", file=grid.file or None)
        stages = [by_name[n] for n in arm.stages]
    if not any(st.kind == "eval" for st in stages):
        raise ConfigError("an arm needs an eval stage (its last eval is its result)",
                          field=f"arms.{arm.name}.stages", file=grid.file or None)
    try:
        return dataclasses.replace(recipe, stages=stages)
    except ConfigError as exc:  # e.g. two chained files with a stage of the same name
        raise ConfigError(str(exc), field=f"arms.{arm.name}", file=grid.file or None) from None


def node_key(stage: Stage, seed: int, model: dict, parent: str | None) -> str:
    """Content key of a node: sha256 of its stage, seed, model settings and parent key."""
    spec = {"stage": dataclasses.asdict(stage), "seed": seed, "parent": parent,
            "model": model if parent is None else {k: v for k, v in model.items() if k != "name"}}
    blob = json.dumps(spec, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def plan(grid: Grid) -> Plan:
    """Every (arm, seed) as a chain of content-keyed nodes; equal prefixes become one node.

    Raises:
        ConfigError: from `arm_recipe` (every recipe is loaded and checked here).
    """
    nodes: dict[str, Node] = {}
    chains: dict[tuple[str, int], list[str]] = {}
    recipes: dict[tuple[str, int], Recipe] = {}
    for arm in grid.arms:
        for seed in grid.seeds:
            recipe = arm_recipe(grid, arm, seed)
            model = dataclasses.asdict(recipe.model)
            parent, chain = None, []
            for stage in recipe.stages:
                if stage.kind == "eval" and parent is not None:
                    stage = measured_as_trained(stage, nodes[parent].stage)
                key = node_key(stage, seed, model, parent)
                nodes.setdefault(key, Node(key, stage, seed, model, parent))
                chain.append(key)
                if stage.kind != "eval":  # an eval leaves the model as it is
                    parent = key
            chains[(arm.name, seed)], recipes[(arm.name, seed)] = chain, recipe
    result = Plan(nodes, chains, recipes)
    base = result.nodes[result.result(grid.baseline, grid.seeds[0])].stage
    check_columns(grid, [b.strip() for b in str(base.eval.get("benchmarks", "")).split(",")])
    check_trend_arms(grid, {a for (a, _), r in recipes.items()
                            if any(st.kind == "rl" for st in r.stages)})
    return result


def measured_as_trained(stage: Stage, trained: Stage) -> Stage:
    """An eval stage whose recipe leaves its mode or template unset takes those of the stage
    that trained its model (what that model records; a node's recipe sets every field, so the
    runner could not tell them apart)."""
    unset = {k: getattr(trained, k) for k in ("mode", "template")
             if stage.given is not None and k not in stage.given}
    return dataclasses.replace(stage, **unset) if unset else stage


def node_dir(grid: Grid, node: Node) -> Path:
    """The node's folder: its one-stage recipe, log and runner outputs."""
    return Path(grid.output_dir) / "nodes" / node.label


def stage_dir(grid: Grid, node: Node) -> Path:
    """Where the runner writes the node's stage (metrics, dumps, eval files, `model/`)."""
    return node_dir(grid, node) / f"0-{node.stage.name}"


def node_recipe(grid: Grid, plan_: Plan, node: Node) -> dict[str, Any]:
    """The node's one-stage recipe as a mapping (written as its recipe.yaml)."""
    model = dict(node.model)
    if node.parent is not None:
        model["name"] = str((stage_dir(grid, plan_.nodes[node.parent]) / "model").resolve())
    return {"name": node.label, "output_dir": str(node_dir(grid, node).resolve()),
            "seed": node.seed, "model": model, "stages": [dataclasses.asdict(node.stage)]}


def is_done(grid: Grid, node: Node) -> bool:
    """Whether the runner recorded the node's stage as done."""
    path = node_dir(grid, node) / "state.json"
    if not path.is_file():
        return False
    record = json.loads(path.read_text()).get("stages", {}).get(node.stage.name, {})
    return record.get("status") == "done"
