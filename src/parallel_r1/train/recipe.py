"""A run as one YAML recipe: the model, then stages (sft, rl, eval) in order, each checked up front.

`load(path, overrides)` reads the YAML, applies `a.b=c` overrides (`stages.1.learning_rate=1e-4`
or, by stage name, `stages.rl.learning_rate=1e-4`), rejects unknown keys naming the key and the
file, and builds dataclasses whose `__post_init__` checks raise ConfigError naming the field.
Pure Python + yaml; no torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from parallel_r1.errors import ConfigError, unknown_name
from parallel_r1.outputs import output_path
from parallel_r1.sampling_checks import check_sampling
from parallel_r1.train.config_types import check_type
from parallel_r1.train.trackers import check_report_to
from parallel_r1.train.train_layout import train_layout_problem
from parallel_r1.train.trainer_limits import seed_problem, stage_problem
from parallel_r1.train.yaml_text import Where, load_yaml

STAGE_KINDS = ("sft", "rl", "eval")
MODES = ("structured", "causal", "threads")
BACKENDS = ("torch", "vllm")
VLLM_MODES = ("colocate", "server")


def _f(default: Any, help: str) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class ModelSpec:
    name: str = _f("tiny", "'tiny' (built in code), a local transformers dir or a hub id")
    dtype: str = _f("float32", "float32 | bfloat16 | float16")
    tiny_layers: int = _f(2, "decoder layers of the tiny model")
    tiny_hidden: int = _f(64, "hidden size of the tiny model")
    tiny_digits: bool = _f(False, "tiny model: one token per digit (models.tiny.build_tokenizer)")
    chat: bool = _f(True, "apply the tokenizer's chat template to prompts")
    lora_r: int = _f(0, "LoRA rank for SFT/RL through peft; 0 = full fine-tuning")

    def __post_init__(self) -> None:
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError(f"unknown dtype '{self.dtype}'", field="model.dtype")
        if self.lora_r < 0:
            raise ConfigError("must be >= 0", field="model.lora_r")


@dataclass
class Stage:
    """Fields shared by every stage kind; a kind ignores none of them silently (see checks)."""

    # The keys its recipe file or an override set (None: built in code, everything set). Not a
    # field: it is no setting, and stays out of asdict, the state and the grid's node keys.
    given: ClassVar[frozenset[str] | None] = None
    kind: str = _f("sft", "sft | rl | eval")
    name: str = _f("", "unique stage name (default: the kind)")
    data: str = _f("synthetic:1:64:0", "'synthetic:LEVEL:COUNT[:SEED]', a data set name or a file")
    template: str = _f("parallel", "prompt template name or file")
    mode: str = _f("structured", "layout: structured ('Unseen'), causal ('Seen') or threads "
                   "(each path its own request; what vLLM samples)")
    learning_rate: float = _f(1e-5, "peak learning rate")
    adam_beta1: float = _f(0.9, "AdamW beta1")
    adam_beta2: float = _f(0.95, "AdamW beta2 (SPEC: 0.95 SFT, 0.999 RL)")
    weight_decay: float = _f(0.01, "AdamW weight decay")
    lr_scheduler_type: str = _f("cosine", "transformers scheduler name (cosine SFT, constant RL)")
    warmup_ratio: float = _f(0.1, "warmup as a share of the steps")
    max_grad_norm: float = _f(1.0, "gradient clipping")
    per_device_batch_size: int = _f(1, "sequences (SFT) or completions (RL) per device and micro-step")
    gradient_accumulation_steps: int = _f(1, "micro-steps per optimiser step")
    num_epochs: float = _f(1.0, "SFT epochs (ignored when max_steps > 0)")
    max_steps: int = _f(-1, "optimiser steps; -1 = from num_epochs (SFT only)")
    save_steps: int = _f(50, "checkpoint every N optimiser steps (resume points)")
    max_length: int = _f(4096, "SFT: drop longer examples")
    # RL
    reward: Any = _f("accuracy_reward", "reward name, {name: weight} or a schedule {kind: ...}")
    grader: str = _f("math-verify", "answer grader ('paper' reproduces the paper's)")
    num_generations: int = _f(8, "completions per prompt (G)")
    loss_type: str = _f("dapo", "grpo | dapo | dr_grpo (TRL loss_type; dapo = token-mean)")
    advantage: str = _f("grpo", "grpo (std-normalised) | dr_grpo (no std)")
    epsilon: float = _f(0.2, "lower clip range")
    epsilon_high: float = _f(0.2, "upper clip range (clip-higher 0.28 in S2)")
    beta: float = _f(0.0, "KL weight to the reference model; 0 = none")
    dynamic_sampling: bool = _f(False, "DAPO: drop groups whose rewards are all equal")
    refill_rounds: int = _f(0, "DAPO: rounds of fresh groups drawn to replace dropped ones")
    malformed: str = _f("score", "score malformed rollouts (paper) or drop them (NPR)")
    temperature: float = _f(1.0, "sampling temperature")
    max_tokens: int = _f(3000, "response token cap, all paths included")
    num_paths: Any = _f(2, "paths per block; null lets the model decide")
    max_path_tokens: int = _f(256, "token cap of one path")
    max_blocks: int = _f(4, "blocks per response at most")
    dump_every: int = _f(0, "write rollout dumps every N steps; 0 = never")
    check_logprobs: bool = _f(True, "log |engine - trainer| log-prob (max, mean, p99) of the "
                                    "trained tokens")
    logprob_check_every: int = _f(1, "check_logprobs every N optimiser steps (free unless the "
                                     "model has dropout)")
    activation_checkpointing: bool = _f(False, "recompute activations in the backward pass: "
                                               "less memory, ~30% more compute")
    backend: str = _f("torch", "rl rollouts: torch (built-in engine) or vllm (TRL's vLLM)")
    vllm_mode: Any = _f(None, "backend vllm: colocate (default) or server")
    vllm_server_url: Any = _f(None, "vllm_mode server: base URL of `trl vllm-serve`")
    vllm_gpu_memory_utilization: float = _f(0.3, "vllm_mode colocate: share of GPU memory")
    kv_cache_gb: Any = _f(None, "backend torch: KV cache budget in GiB; null = unbounded")
    train_layout: Any = _f(None, "rl: layout of the trainer's log-probs; null = mode. mode "
                           "threads + structured is the original code's mismatch (an arm)")
    num_iterations: int = _f(1, "rl: policy updates per generation (TRL's num_iterations, "
                             "GRPO's mu); > 1 makes the PPO clip bind")
    # eval: fields passed to parallel_r1.eval.evaluate.EvalConfig
    eval: dict = _f({}, "EvalConfig fields for an eval stage (benchmarks, samples, limit, ...)")

    def __post_init__(self) -> None:
        self.name = self.name or self.kind
        checks = [
            (self.kind in STAGE_KINDS, "kind", f"must be one of {STAGE_KINDS}"),
            (self.mode in MODES, "mode", f"must be one of {MODES}"),
            (self.loss_type in ("grpo", "dapo", "dr_grpo", "bnpo"), "loss_type",
             "must be grpo, dapo, dr_grpo or bnpo"),
            (self.advantage in ("grpo", "dr_grpo"), "advantage", "must be grpo or dr_grpo"),
            (self.malformed in ("score", "drop"), "malformed", "must be 'score' or 'drop'"),
            (self.learning_rate > 0, "learning_rate", "must be > 0"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio", "must be in [0, 1)"),
            (self.epsilon_high >= self.epsilon, "epsilon_high", "must be >= epsilon"),
            (self.beta >= 0, "beta", "must be >= 0"),
            (self.num_generations >= 2 or self.kind != "rl", "num_generations", "must be >= 2"),
            (self.kind != "rl" or self.max_steps > 0, "max_steps", "an rl stage needs max_steps > 0"),
            (self.per_device_batch_size >= 1, "per_device_batch_size", "must be >= 1"),
            (self.gradient_accumulation_steps >= 1, "gradient_accumulation_steps", "must be >= 1"),
            (self.save_steps >= 1, "save_steps", "must be >= 1"),
            (self.refill_rounds >= 0, "refill_rounds", "must be >= 0"),
            (self.logprob_check_every >= 1, "logprob_check_every", "must be >= 1"),
            (not self.refill_rounds or self.dynamic_sampling, "refill_rounds",
             "refilling needs dynamic_sampling: true"),
            (self.max_length >= 1, "max_length", "must be >= 1"),
            (self.dump_every >= 0, "dump_every", "must be >= 0 (0 = never)"),
            (self.num_iterations >= 1, "num_iterations", "must be >= 1"),
            (self.kind == "rl" or self.num_iterations == 1, "num_iterations",
             "updates per generation apply to rl stages only; remove it"),
            (self.kind != "rl" or self.save_steps % max(self.num_iterations, 1) == 0, "save_steps",
             f"must be a multiple of num_iterations ({self.num_iterations}): a checkpoint "
             "inside a generation's reuse cannot be resumed exactly"),
            (self.kind != "rl" or self.max_steps % max(self.num_iterations, 1) == 0, "max_steps",
             f"must be a multiple of num_iterations ({self.num_iterations}): else the last "
             "generation is trained on fewer times than the others"),
            (self.kind == "eval" or not self.eval, "eval", "eval settings (answer_reader, ...) "
             "belong to a kind: eval stage; training never reads them (the RL reward reads the "
             "Final-Answer contract)"),
        ]
        for ok, name, fix in checks:
            if not ok:
                raise ConfigError(f"{fix}, got {getattr(self, name)!r}",
                                  field=f"stages.{self.name}.{name}")
        check_sampling({k: getattr(self, k) for k in ("temperature", "max_tokens",
                                                      "max_path_tokens", "max_blocks")},
                       prefix=f"stages.{self.name}.")
        problem = stage_problem(self.kind, temperature=self.temperature, adam_beta1=self.adam_beta1,
                                lr_scheduler_type=self.lr_scheduler_type,
                                adam_beta2=self.adam_beta2)  # what TRL would refuse at run time
        if problem:
            raise ConfigError(f"{problem[1]}, got {getattr(self, problem[0])!r}",
                              field=f"stages.{self.name}.{problem[0]}")
        paths = self.num_paths
        if paths is not None and (type(paths) is not int or paths < 2):
            raise ConfigError(f"must be an integer >= 2, or null to let the model decide, got "
                              f"{paths!r}", field=f"stages.{self.name}.num_paths")
        self._check_backend()
        problem = train_layout_problem(self.kind, self.mode, self.train_layout, self.backend)
        if problem:
            raise ConfigError(f"{problem}, got {self.train_layout!r}",
                              field=f"stages.{self.name}.train_layout")
        if self.kind == "rl":
            self._check_reward()

    def _check_reward(self) -> None:
        from parallel_r1.rewards import build_reward

        where = f"stages.{self.name}.reward"
        spec = self.reward
        if not isinstance(spec, (str, dict)):
            raise ConfigError(f"expected a reward name, {{name: weight}} or a schedule "
                              f"{{kind: ...}}, got {type(spec).__name__} {spec!r}", field=where)
        if isinstance(spec, dict) and "kind" not in spec:
            for name, weight in spec.items():
                if type(weight) not in (int, float):
                    raise ConfigError(f"weight of '{name}' must be a number, got "
                                      f"{type(weight).__name__} {weight!r}", field=where)
        try:
            build_reward(spec, grader=self.grader)  # unknown names fail here
        except ConfigError as exc:  # name the recipe field, keep the registry's message
            field = f"stages.{self.name}.grader" if exc.field == "grader" else where
            detail = str(exc).split(": ", 1)[-1] if exc.field else str(exc)
            prefix = f"{exc.field}: " if exc.field not in (None, "grader", "reward") else ""
            raise ConfigError(prefix + detail, field=field) from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad reward setting: {exc}", field=where) from None

    def _check_backend(self) -> None:
        """The layout and backend fields: each bad setting names its field and the fix."""
        vllm = self.backend == "vllm"
        checks = [
            (self.backend in BACKENDS, "backend",
             f"unknown backend '{self.backend}'; known: {', '.join(BACKENDS)}"),
            (self.kind != "sft" or self.mode != "threads", "mode",
             "threads is a sampling layout for rl and eval stages; SFT trains structured or "
             "causal"),
            (self.mode != "threads" or self.num_paths is not None, "num_paths",
             "the threads layout runs a fixed number of paths; set num_paths"),
            (not vllm or self.kind == "rl", "backend", "vllm samples the rollouts of rl stages; "
             "sft and eval stages run in process"),
            (not vllm or self.mode != "structured", "mode", "the vllm backend samples the causal "
             "and threads layouts; structured needs backend: torch"),
            (self.vllm_mode is None or vllm, "vllm_mode", "needs backend: vllm"),
            (self.vllm_mode in (None, *VLLM_MODES), "vllm_mode",
             f"must be one of {', '.join(VLLM_MODES)}"),
            (self.vllm_server_url is None or self.vllm_mode == "server", "vllm_server_url",
             "needs vllm_mode: server"),
            (self.vllm_server_url is None or isinstance(self.vllm_server_url, str),
             "vllm_server_url", "must be a URL such as http://host:8000"),
            (0 < self.vllm_gpu_memory_utilization <= 1, "vllm_gpu_memory_utilization",
             "must be in (0, 1]"),
            (self.kv_cache_gb is None or not vllm, "kv_cache_gb", "budgets the built-in engine; "
             "with backend vllm set vllm_gpu_memory_utilization"),
            (self.kv_cache_gb is None or (isinstance(self.kv_cache_gb, (int, float))
                                          and self.kv_cache_gb > 0), "kv_cache_gb",
             "must be a number of GiB > 0, or null"),
        ]
        for ok, name, fix in checks:
            if not ok:
                raise ConfigError(f"{fix}, got {getattr(self, name)!r}",
                                  field=f"stages.{self.name}.{name}")


@dataclass
class Recipe:
    name: str = _f("run", "name of the run")
    output_dir: str = _f("runs/run", "run directory: state file, stage outputs, checkpoints")
    seed: int = _f(0, "seed of every stage")
    model: ModelSpec = _f(None, "the starting model")
    stages: list = _f([], "stages in order; each starts from the last model-producing stage")
    report_to: Any = _f("none", "trackers for the training stages' metrics, as transformers "
                                "names them: tensorboard, wandb, trackio, mlflow, ... or a list")
    where: dict = field(default_factory=dict, init=False, repr=False, compare=False, metadata={
        "help": "dotted field -> (file, line) or (override, None) that set it (for messages)"})

    def locate(self, dotted: str) -> dict[str, Any]:
        """ConfigError/DataError keywords naming where `dotted` (e.g. "stages.2.data") was set;
        the field is named with the stage's name ("stages.rl.data")."""
        file, line = self.where.get(dotted, (None, None))
        parts = dotted.split(".")
        if len(parts) > 2 and parts[0] == "stages" and parts[1].isdigit() \
                and int(parts[1]) < len(self.stages):
            parts[1] = self.stages[int(parts[1])].name
        return {"field": ".".join(parts), "file": file, "line": line}

    def __post_init__(self) -> None:
        self.report_to = check_report_to(self.report_to)
        if seed_problem(self.seed):
            raise ConfigError(f"{seed_problem(self.seed)}, got {self.seed!r}", field="seed")
        if not self.stages:
            raise ConfigError("a recipe needs at least one stage", field="stages")
        names = [s.name for s in self.stages]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ConfigError(f"stage names must be unique; repeated: {sorted(dup)}",
                              field="stages")


def _build(cls: type, data: Any, where: str, file: str, lines: Where,
           label: str | None = None) -> Any:
    """`cls(**data)` with every key and type checked; `where` is the dotted path of `data` in
    the file (for line numbers), `label` how messages name it (a stage by its name)."""

    def at(dotted: str) -> dict[str, Any]:
        src, line = lines.get(dotted, (file, None))
        shown = (label or where) + dotted[len(where):] if dotted.startswith(where) else dotted
        return {"field": shown or None, "file": src, "line": line}

    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping, got {type(data).__name__}", **at(where))
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in known:
            hint = _stage_key_hint(key, known, data.get("stages")) if cls is Recipe else ""
            raise ConfigError(unknown_name("key", key, known) + hint,
                              **at(f"{where}.{key}" if where else key))
    types = {f.name: f.type for f in dataclasses.fields(cls)}
    data = {k: check_type(v, types[k], **at(f"{where}.{k}" if where else k))
            for k, v in data.items()}
    try:
        return cls(**data)
    except ConfigError as exc:
        field = exc.field or where
        if where.startswith("stages.") and field.startswith("stages."):  # by name -> by index
            field = ".".join([where, *field.split(".")[2:]])
        raise ConfigError(str(exc).split(": ", 1)[-1], **at(field)) from None


def _stage_key_hint(key: str, known: set[str], stages: Any) -> str:
    """A top-level key that is (close to) a stage key: where it belongs, e.g. "; did you mean
    stages.<name>.learning_rate? (a stage key; stages here: sft, rl)"; else ""."""
    from difflib import get_close_matches

    fields = [f.name for f in dataclasses.fields(Stage) if f.init]
    close = get_close_matches(key, fields, n=1, cutoff=0.75)
    if not close or get_close_matches(key, known, n=1, cutoff=0.6):
        return ""
    names = [s.name for s in stages or [] if isinstance(s, Stage)]
    return (f"; did you mean stages.<name>.{close[0]}? (a stage key; stages here: "
            f"{', '.join(names) or 'none'})")


def _stage_label(stage: Any, index: int) -> str:
    name = stage.get("name") or stage.get("kind") if isinstance(stage, dict) else None
    return f"stages.{name}" if isinstance(name, str) and name else f"stages.{index}"


def _set(tree: dict, dotted: str, raw: str) -> str:
    """Apply one override; returns its dotted path with stage names turned into indices."""
    keys, path = dotted.split("."), []
    node: Any = tree
    for key in keys[:-1]:
        if isinstance(node, list):
            key = str(_index(node, key, dotted))
            node = node[int(key)]
        else:
            node = node.setdefault(key, {})
            if not isinstance(node, (dict, list)):
                raise ConfigError(f"'{key}' is not a mapping; cannot set '{dotted}'", field=dotted)
        path.append(key)
    try:
        value, _ = load_yaml(raw, "")  # bounded too: a grid file passes overrides on
    except ConfigError as exc:
        raise ConfigError(f"override value {raw!r}: {exc}", field=dotted) from None
    last = str(_index(node, keys[-1], dotted)) if isinstance(node, list) else keys[-1]
    node[int(last) if isinstance(node, list) else last] = value
    return ".".join([*path, last])


def _index(stages: list, key: str, dotted: str) -> int:
    if key.isdigit() and int(key) < len(stages):
        return int(key)
    for i, stage in enumerate(stages):
        if isinstance(stage, dict) and stage.get("name", stage.get("kind")) == key:
            return i
    names = [s.get("name", s.get("kind")) if isinstance(s, dict) else "?" for s in stages]
    raise ConfigError(f"no stage '{key}' in override '{dotted}'; the stages are "
                      f"{', '.join(map(str, names))} (by name or index 0..{len(stages) - 1})",
                      field=dotted)


def load(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read a recipe file, apply `key=value` overrides, check everything.

    Raises:
        ConfigError: unreadable file, unknown key (named, with the file), bad value (field named),
            malformed override.
    """
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read recipe: {exc}", file=file) from None
    tree, lines = load_yaml(text, file)  # bounded whatever the YAML (aliases, nesting)
    tree = {} if tree is None else tree
    if not isinstance(tree, dict):
        raise ConfigError(f"a recipe is a mapping (name, model, stages, ...), got "
                          f"{type(tree).__name__}", file=file)
    if "arms" in tree and "stages" not in tree:
        raise ConfigError(f"this is a grid file (it has arms, no stages); run it with: "
                          f"parallel-r1 grid {file}", file=file, line=lines.get("arms",
                                                                              (None, None))[1])
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override '{item}' is not key=value", field=item)
        dotted = _set(tree, key.strip(), raw)
        for known in [k for k in lines if k == dotted or k.startswith(dotted + ".")]:
            del lines[known]
        lines[dotted] = (f"override {item}", None)
    data = dict(tree)
    data["model"] = _build(ModelSpec, data.get("model", {}), "model", file, lines)
    stages = data.get("stages", [])
    if not isinstance(stages, list):
        raise ConfigError("must be a list of stages", field="stages", file=file,
                          line=lines.get("stages", (None, None))[1])
    data["stages"] = [_build(Stage, s, f"stages.{i}", file, lines, _stage_label(s, i))
                      for i, s in enumerate(stages)]
    for stage, raw in zip(data["stages"], stages):
        stage.given = frozenset(raw)
    recipe = _build(Recipe, data, "", file, lines)
    recipe.where = dict(lines)
    # Resolved here, once: the lock, the state, the Trainer and the model saves all see one folder
    # (a literal `~` would otherwise name ./~ for some parts and $HOME for others).
    recipe.output_dir = str(output_path(recipe.output_dir))
    return recipe
