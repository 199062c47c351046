"""Evaluate a model on benchmarks: sample with the engine, grade with every grader, write rows.

Outputs in `out/`:
- `samples.jsonl`: one row per sample, appended as each finishes (the only file not written
  atomically); a rerun reads it and samples only what is missing (resume).
- `summary.json` and `table.md`: the metrics of `report.summarize_eval`, written atomically.
- `config.json`: the settings; a rerun with different sampling settings is refused once
  samples were drawn (`eval.resume`).

Seeds: sample j of problem i of benchmark b has seed `sample_seed(base, b, i, j)`, distinct
within a benchmark and recorded in its row, so any sample can be reproduced alone.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parallel_r1.errors import ConfigError, EngineError, UnknownNameError
from parallel_r1.eval.benchmarks import Benchmark, load_problems, parse_names
from parallel_r1.eval.resume import check_resume
from parallel_r1.format.stats import response_stats
from parallel_r1.format.validate import is_valid
from parallel_r1.rewards.grading import grade_response_detail
from parallel_r1.rewards.readers import ANSWER_READERS, DEFAULT_READER
from parallel_r1.sampling_checks import check_sampling

SAMPLES_FILE, SUMMARY_FILE, TABLE_FILE, CONFIG_FILE = (
    "samples.jsonl", "summary.json", "table.md", "config.json")
MAX_SAMPLES = 500  # per problem and run; seeds leave room for this many
SC_OFFSET = 500  # self-consistency samples take seeds after the model's


@dataclass
class EvalConfig:
    """What to evaluate and how to sample it."""

    benchmarks: str = field(default="gsm8k", metadata={"help": "Comma-separated benchmark names."})
    samples: int | None = field(default=None, metadata={
        "help": "Samples per problem (k); None = each benchmark's default (16 AIME/AMC, 1 MATH)."})
    limit: int | None = field(default=None, metadata={"help": "First N problems per benchmark."})
    mode: str = field(default="structured", metadata={
        "help": "Layout: causal | structured | threads."})
    template: str = field(default="parallel", metadata={"help": "Prompt template name or file."})
    chat: bool = field(default=True, metadata={"help": "Apply the tokenizer's chat template."})
    max_tokens: int = field(default=3000, metadata={"help": "Response token cap (all paths)."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (paper: 1)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass."})
    top_k: int = field(default=0, metadata={"help": "Top-k cut-off; 0 = off."})
    num_paths: int | None = field(default=2, metadata={"help": "Paths per block (None: model)."})
    max_path_tokens: int = field(default=256, metadata={"help": "Token cap of one path."})
    max_blocks: int = field(default=4, metadata={"help": "Blocks per response at most."})
    seed: int = field(default=0, metadata={"help": "Base seed; each sample derives its own."})
    graders: tuple[str, ...] = field(default=("math-verify", "paper"), metadata={
        "help": "Graders, the first is the headline one."})
    answer_reader: str = field(default=DEFAULT_READER, metadata={
        "help": "Where answers are read: final-answer (the contract) | common (also ####, "
                "'the answer is'; models not trained on the contract). See rewards.readers."})
    sc_baseline: bool = field(default=False, metadata={
        "help": "Also run self-consistency (causal, sc_template) at the model's token budget."})
    sc_template: str = field(default="baseline", metadata={"help": "Template of the SC runs."})
    sc_max_rounds: int = field(default=4, metadata={"help": "SC draws at most this many x k."})
    batch_size: int = field(default=8, metadata={"help": "Problems sampled side by side."})
    drop_suspect: bool = field(default=False, metadata={
        "help": "Drop problems flagged suspect_truncated (kept and counted by default)."})

    # Fields that change what a row holds (its sample, or its grades): a resumed run must agree.
    SAMPLING_KEYS = ("mode", "template", "chat", "max_tokens", "temperature", "top_p", "top_k",
                     "num_paths", "max_path_tokens", "max_blocks", "seed", "sc_template",
                     "answer_reader")

    def __post_init__(self) -> None:
        if self.mode not in ("causal", "structured", "threads"):
            raise ConfigError(f"mode must be causal, structured or threads, not {self.mode!r}",
                              field="mode")
        if self.samples is not None and not 1 <= self.samples <= MAX_SAMPLES:
            raise ConfigError(f"samples must be in 1..{MAX_SAMPLES}", field="samples")
        if self.limit is not None and self.limit < 1:
            raise ConfigError("limit must be >= 1 (or None for all problems)", field="limit")
        for name in ("batch_size", "sc_max_rounds", "max_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1", field=name)
        check_sampling({k: getattr(self, k) for k in ("temperature", "top_p", "top_k",
                                                      "num_paths", "max_path_tokens",
                                                      "max_blocks")})
        if not self.graders:
            raise ConfigError("give at least one grader", field="graders")
        try:
            ANSWER_READERS.get(self.answer_reader)
        except UnknownNameError as exc:
            raise ConfigError(str(exc).split(": ", 1)[-1], field="answer_reader") from None
        if self.sc_baseline and (self.samples or 16) * self.sc_max_rounds > MAX_SAMPLES:
            raise ConfigError(f"samples x sc_max_rounds must be <= {MAX_SAMPLES}",
                              field="sc_max_rounds")
        self.graders = tuple(self.graders)
        self._check_names()

    def _check_names(self) -> None:
        """Unknown benchmarks, graders and templates stop here, before any output folder is
        looked at."""
        from parallel_r1.data.templates import get_template
        from parallel_r1.rewards.grading import GRADERS

        get_template(self.template)  # raises ConfigError naming the field
        if self.sc_baseline:
            get_template(self.sc_template)
        for name, check in (("benchmarks", lambda: parse_names(self.benchmarks)),
                            ("graders", lambda: [GRADERS.get(g) for g in self.graders])):
            try:
                if not check():
                    raise ConfigError("give at least one benchmark", field=name)
            except UnknownNameError as exc:
                raise ConfigError(str(exc).split(": ", 1)[-1], field=name) from None

    def sampling(self) -> dict[str, Any]:
        """The settings a resumed run must share."""
        return {k: getattr(self, k) for k in self.SAMPLING_KEYS}


def sample_seed(base: int, benchmark: str, problem_index: int, sample: int) -> int:
    """Seed of one sample: distinct for every (problem, sample) of a benchmark, below 2**31."""
    if not 0 <= sample < 2 * MAX_SAMPLES:
        raise ValueError(f"sample index {sample} outside 0..{2 * MAX_SAMPLES - 1}")
    return base + (zlib.crc32(benchmark.encode()) % 200) * 10**7 + problem_index * 1000 + sample


@dataclass
class Job:
    """The samples still to draw for one problem in one run ("model" or "sc")."""

    run: str
    bench: Benchmark
    record: Any  # parallel_r1.data.sources.Record
    problem_index: int
    prompt_ids: list[int]
    samples: list[int]  # sample indices, aligned with seeds
    seeds: list[int]

    @property
    def key(self) -> str:
        return f"{self.run}/{self.bench.name}/{self.problem_index}"


def read_samples(path: Path) -> list[dict]:
    """Rows of a samples file, one per `sample_key` (the last written wins); a torn last line
    (a crash mid-write) is cut off the file."""
    from parallel_r1.files import dedupe, read_log

    return dedupe((row for _, row in read_log(path)[0]), sample_key)


def sample_key(row: dict) -> tuple:
    """(run, benchmark, problem_id, sample): what makes a row unique."""
    return row["run"], row["benchmark"], row["problem_id"], row["sample"]


def build_row(job: Job, sample: int, rollout: Any, prompt_text: str,
              graders: tuple[str, ...], reader: str = DEFAULT_READER) -> dict:
    """The per-sample record: prompt, tagged response, structure, graded answers, seed, tokens."""
    text, gold = rollout.text, job.record.answer
    stats = response_stats(text)
    grades = {}
    for grader in graders:  # one answer contract (rewards.contract); a timed-out grade is wrong
        verdict = grade_response_detail(text, gold, grader, reader)
        grades[grader] = {"pred": verdict.pred, "correct": verdict.correct,
                          "timed_out": verdict.timed_out, "refused": verdict.refused}
    head = grades[graders[0]]
    return {
        "run": job.run, "benchmark": job.bench.name, "problem_id": job.record.id,
        "problem_index": job.problem_index, "sample": sample, "seed": rollout.seed,
        "prompt": prompt_text, "response": text, "answer": gold,
        "pred": head["pred"], "correct": head["correct"], "grades": grades,
        "answer_reader": reader,
        "finish_reason": rollout.finish_reason, "num_tokens": rollout.num_tokens,
        "critical_path_length": rollout.critical_path_length,
        "structure": {"num_blocks": stats.num_blocks,
                      "paths_per_block": list(stats.paths_per_block),
                      "block_positions": [round(p, 4) for p in stats.block_positions],
                      "has_valid_block": stats.has_valid_block, "is_valid": is_valid(text)},
        "suspect_truncated": bool(job.record.extras.get("suspect_truncated", False)),
    }


def run_jobs(engine: Any, jobs: list[Job], params: Any, on_rollout: Callable,
             max_in_flight: int) -> None:
    """Sample every job with continuous batching: at most `max_in_flight` problems at once.

    Calls `on_rollout(job, sample_index, rollout)` as each sample finishes.

    Raises:
        EngineError: the backend failed a sample (the rows already written stay; a rerun
            resumes).
    """
    from parallel_r1.engine.types import Request

    pending, left = deque(j for j in jobs if j.samples), {}
    active: dict[str, Job] = {}
    while pending or engine.has_unfinished():
        while pending and len(active) < max_in_flight:
            job = pending.popleft()
            active[job.key], left[job.key] = job, len(job.samples)
            engine.add_request(Request(job.key, job.prompt_ids,
                                       dataclasses.replace(params, n=len(job.samples)),
                                       list(job.seeds)))
        for out in engine.step():
            if out.rollout is None:
                continue
            if out.rollout.finish_reason == "error":
                raise EngineError(f"sample {out.index} of {out.request_id} failed: "
                                  f"{out.rollout.error}; rerun to resume")
            job = active[out.request_id]
            on_rollout(job, job.samples[out.index], out.rollout)
            left[job.key] -= 1
            if not left[job.key]:
                del active[job.key]


def sampling_params(cfg: EvalConfig, *, causal: bool = False) -> Any:
    """Engine SamplingParams for the model's runs (or the causal SC runs)."""
    from parallel_r1.engine.types import ParallelParams, SamplingParams

    parallel = ParallelParams(mode="causal" if causal else cfg.mode, num_paths=cfg.num_paths,
                              max_path_tokens=cfg.max_path_tokens, max_blocks=cfg.max_blocks)
    return SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                          max_tokens=cfg.max_tokens, parallel=parallel)


class SampleWriter:
    """Appends graded rows to the samples file and keeps the progress bar's running accuracy."""

    def __init__(self, path: Path, rows: list[dict], graders: tuple[str, ...], bar: Any,
                 reader: str = DEFAULT_READER):
        self.path, self.rows, self.graders, self.bar = path, rows, graders, bar
        self.reader = reader
        self.prompts: dict[str, str] = {}
        self.done = {sample_key(r) for r in rows}
        self.counts: dict[str, list[int]] = {}  # run -> [correct, total], for the bar
        for r in rows:
            self._count(r)

    def _count(self, row: dict) -> None:
        tally = self.counts.setdefault(row["run"], [0, 0])
        tally[0] += bool(row["correct"])
        tally[1] += 1

    def __call__(self, job: Job, sample: int, rollout: Any) -> None:
        from parallel_r1.files import append_jsonl

        row = build_row(job, sample, rollout, self.prompts[job.key], self.graders, self.reader)
        append_jsonl(self.path, row)
        self.rows.append(row)
        self.done.add(sample_key(row))
        self._count(row)
        correct, total = self.counts[job.run]
        # drawn by the update (tqdm's interval), not forced: a redraw per sample fills a log
        self.bar.set_postfix({f"acc[{job.run}]": f"{correct / total:.3f}"}, refresh=False)
        self.bar.update(1)


def make_jobs(run: str, problems: dict[str, list], k: dict[str, int], sample_range: range | None,
              prompt_ids: Callable[[str, Any], tuple[list[int], str]], writer: SampleWriter,
              base_seed: int, wanted: Callable[[str, Any], bool] = lambda b, r: True) -> list[Job]:
    """One job per problem with its missing samples (`sample_range` or 0..k-1)."""
    jobs = []
    offset = SC_OFFSET if run == "sc" else 0
    for name, (bench, records) in problems.items():
        for i, record in enumerate(records):
            indices = sample_range if sample_range is not None else range(k[name])
            todo = [j for j in indices if (run, name, record.id, j) not in writer.done]
            if not todo or not wanted(name, record):
                continue
            ids, text = prompt_ids(run, record)
            job = Job(run, bench, record, i, ids, todo,
                      [sample_seed(base_seed, name, i, offset + j) for j in todo])
            writer.prompts[job.key] = text
            jobs.append(job)
    return jobs


def _tokens_by_problem(rows: list[dict], run: str) -> dict[tuple[str, str], int]:
    totals: dict[tuple[str, str], int] = {}
    for r in rows:
        if r["run"] == run:
            key = (r["benchmark"], r["problem_id"])
            totals[key] = totals.get(key, 0) + r["num_tokens"]
    return totals


def evaluate(model: Any, tokenizer: Any, cfg: EvalConfig, out: str | Path, *,
             model_name: str = "model", progress: bool = True, engine: Any = None
             ) -> dict[str, Any]:
    """Sample, grade and summarise every benchmark of `cfg`; write the files listed above.

    `engine` samples (any `parallel_r1.engine` Engine, e.g. over an OpenAI-compatible server);
    by default the built-in engine over `model`.

    Returns:
        The summary dict (also in `out/summary.json`); its "table" key holds the markdown table.
    Raises:
        ConfigError: bad settings, or `out` resumed with other sampling settings.
        DataError / UnknownNameError: an unreadable or unknown benchmark.
        WriterLockedError: another process is writing `out` (one writer at a time).
    """
    from parallel_r1.files import command_line, one_writer

    with one_writer(out, command_line()):
        return _evaluate(model, tokenizer, cfg, Path(out), model_name, progress, engine)


def _evaluate(model: Any, tokenizer: Any, cfg: EvalConfig, out: Path, model_name: str,
              progress: bool, engine: Any) -> dict[str, Any]:
    from tqdm.auto import tqdm

    from parallel_r1.engine.torch_engine import TorchEngine
    from parallel_r1.eval import report
    from parallel_r1.outputs import remove_temporaries

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_temporaries(out, depth=1)  # what a kill mid-write left (we hold the lock)
    check_resume(out, {"model": model_name, **cfg.sampling()},
                 {"answer_reader": DEFAULT_READER},  # older folders do not record it
                 config_file=CONFIG_FILE, samples_file=SAMPLES_FILE)
    problems, load_metrics, k = {}, {}, {}
    for bench in parse_names(cfg.benchmarks):
        records, metrics = load_problems(bench, limit=cfg.limit, drop_suspect=cfg.drop_suspect)
        problems[bench.name], load_metrics[bench.name] = (bench, records), metrics
        k[bench.name] = cfg.samples or bench.samples
    report.write_json(out / CONFIG_FILE, {"model": model_name, "sampling": {
        "model": model_name, **cfg.sampling()}, "config": dataclasses.asdict(cfg),
        "data": load_metrics})
    rows = read_samples(out / SAMPLES_FILE)
    engine = engine if engine is not None else TorchEngine(model, tokenizer)
    bar = tqdm(total=0, desc="eval", unit="sample", disable=not progress)
    writer = SampleWriter(out / SAMPLES_FILE, rows, cfg.graders, bar, cfg.answer_reader)
    prompt_ids = _prompter(tokenizer, cfg)
    jobs = make_jobs("model", problems, k, None, prompt_ids, writer, cfg.seed)
    try:
        _run(engine, jobs, sampling_params(cfg), writer, cfg)
        if cfg.sc_baseline:
            _run_sc(engine, problems, k, prompt_ids, writer, cfg)
    finally:
        bar.close()  # an error message then starts on a line of its own
    summary = report.summarize_eval(writer.rows, [problems[n][0] for n in problems], k,
                                    cfg.graders, load_metrics)
    summary["model"], summary["config"] = model_name, dataclasses.asdict(cfg)
    summary["answer_reader"] = cfg.answer_reader  # the tables name it
    summary["engine"] = type(getattr(engine, "backend", engine)).__name__  # what sampled
    summary["table"] = report.eval_table(summary, model_name)
    report.write_json(out / SUMMARY_FILE, summary)
    report.write_text(out / TABLE_FILE, summary["table"] + "\n")
    return summary


def _run(engine: Any, jobs: list[Job], params: Any, writer: SampleWriter,
         cfg: EvalConfig) -> None:
    writer.bar.total += sum(len(j.samples) for j in jobs)
    writer.bar.refresh()
    run_jobs(engine, jobs, params, writer, cfg.batch_size)


def _run_sc(engine: Any, problems: dict, k: dict[str, int], prompt_ids: Callable,
            writer: SampleWriter, cfg: EvalConfig) -> None:
    """Self-consistency: causal samples in rounds of k until each problem has spent the model's
    token budget (the model's total tokens on it) or `sc_max_rounds` rounds are drawn."""
    budget = _tokens_by_problem(writer.rows, "model")
    for rnd in range(cfg.sc_max_rounds):
        spent = _tokens_by_problem(writer.rows, "sc")

        def wanted(name: str, record: Any, spent: dict = spent, first: bool = rnd == 0) -> bool:
            key = (name, record.id)
            return first or spent.get(key, 0) < budget.get(key, 0)

        for name in k:  # noqa: PLC0206 (k and problems share keys)
            sample_range = range(rnd * k[name], (rnd + 1) * k[name])
            jobs = make_jobs("sc", {name: problems[name]}, k, sample_range, prompt_ids, writer,
                             cfg.seed, wanted)
            _run(engine, jobs, sampling_params(cfg, causal=True), writer, cfg)


def _prompter(tokenizer: Any, cfg: EvalConfig) -> Callable[[str, Any], tuple[list[int], str]]:
    from parallel_r1.data.templates import render_prompt
    from parallel_r1.models import apply_template

    def prompt_ids(run: str, record: Any) -> tuple[list[int], str]:
        template = cfg.sc_template if run == "sc" else cfg.template
        ids = apply_template(tokenizer, render_prompt(template, record.question), chat=cfg.chat)
        return ids, tokenizer.decode(ids, skip_special_tokens=False)

    return prompt_ids
