"""The model card (README.md) of every model directory the project writes.

Rendered from the directory's provenance (`parallel_r1.json`: base model, recipe, stage, data,
layout, training settings, evaluations): Hugging Face metadata built with huggingface_hub's
`ModelCardData` (so the YAML header is what the Hub expects), then what the model is, how it was
trained, its tags and layout, its evaluation tables, how to load it with transformers and how to
serve it in parallel mode. An eval stage adds its table to the card of the model it measured.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

CARD_FILE = "README.md"
PAPER = "https://arxiv.org/abs/2509.07980"
# A Hub repo id: "name" or "org/name", nothing that looks like a path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
KINDS = {"sft": "supervised fine-tuning on parallel traces", "rl": "GRPO reinforcement learning",
         "prepared": "the six parallel-thinking tags added", "tiny": "a tiny test model"}
LAYOUTS = {
    "structured": "structured (\"Unseen\") layout: the paths of a block share the prefix, cannot "
                  "see each other and restart at the same position; the summary sees all of them",
    "causal": "causal (\"Seen\") layout: the paths are written one after another with ordinary "
              "attention",
}


def is_hub_id(name: Any) -> bool:
    """Whether `name` reads as a Hub repo id ("org/name") rather than a local path or a label."""
    return isinstance(name, str) and bool(_HUB_ID.match(name)) and not Path(name).exists()


def card_metadata(meta: dict[str, Any]) -> Any:
    """`huggingface_hub.ModelCardData` for a model's provenance `meta`."""
    from huggingface_hub import EvalResult, ModelCardData

    tags = ["parallel-r1", "parallel-thinking"]
    tags += [t for t in ("grpo" if meta.get("kind") == "rl" else meta.get("kind"),
                         meta.get("mode")) if t]
    results = [EvalResult(task_type="text-generation", dataset_type=bench, dataset_name=title,
                          metric_type=metric, metric_name=f"{metric} ({grader})", metric_value=value)
               for ev in meta.get("evals", {}).values()
               for bench, title, metric, grader, value in eval_figures(ev.get("summary", {}))]
    data = meta.get("data")
    return ModelCardData(
        library_name="transformers", pipeline_tag="text-generation", tags=tags,
        base_model=meta.get("base_model") if is_hub_id(meta.get("base_model")) else None,
        datasets=[data] if is_hub_id(data) else None,
        model_name=meta.get("name") if results else None, eval_results=results or None)


def eval_figures(summary: dict[str, Any]) -> list[tuple[str, str, str, str, float]]:
    """(benchmark, title, metric, grader, value in %) for Mean@k and Pass@k of an eval summary."""
    out = []
    for bench, fig in sorted(summary.get("benchmarks", {}).items()):
        for grader, grades in sorted(fig.get("grades", {}).items()):
            k = grades.get("k")
            for key, metric in (("mean", f"mean@{k}"), ("pass_unbiased", f"pass@{k}")):
                value = (grades.get(key) or {}).get("value")
                if isinstance(value, (int, float)):
                    out.append((bench, fig.get("title", bench), metric, grader,
                                round(100 * value, 2)))
    return out


def render_card(meta: dict[str, Any], name: str) -> str:
    """The card's full text (YAML header + markdown) for provenance `meta` of model `name`."""
    label = "-".join(str(meta[k]) for k in ("recipe", "stage") if meta.get(k))
    meta = {**meta, "name": meta.get("name") or label or name}
    data = card_metadata(meta)
    base = meta.get("base_model") or meta.get("source") or "unknown"
    steps = meta.get("lineage") or [meta]
    kind = ", then ".join(KINDS.get(m.get("kind", ""), m.get("kind") or "a model")
                          + (f" (stage {m['stage']}, data `{m['data']}`)"
                             if len(steps) > 1 and m.get("stage") else "") for m in steps)
    title = " / ".join(str(meta[k]) for k in ("recipe", "stage") if meta.get(k)) or name
    lines = [f"---\n{data.to_yaml()}\n---", "", f"# {title}", "",
             f"A language model that can think in parallel (`<Parallel>` blocks of `<Path>`s "
             f"and a `<Summary>`), as in Parallel-R1 ([arXiv 2509.07980]({PAPER})). Made with "
             f"parallel-r1 from `{base}` by {kind}.", ""]
    lines += [meta["note"], ""] if meta.get("note") else []
    lines += _training(meta) + _tags(meta) + _evals(meta) + _usage(meta)
    return "\n".join(lines).rstrip() + "\n"


def _training(meta: dict[str, Any]) -> list[str]:
    rows = [("base model", meta.get("base_model") or meta.get("source")),
            ("lineage", " -> ".join([str(meta.get("base_model") or meta.get("source")), *(
                f"{m.get('stage')} ({m.get('kind')})" for m in meta.get("lineage") or [])])
             if meta.get("lineage") else None),
            ("recipe", meta.get("recipe")), ("stage", meta.get("stage")),
            ("stage kind", meta.get("kind")), ("data", meta.get("data")),
            ("layout", meta.get("mode")), ("paths per block", meta.get("num_paths")),
            ("checkpoint of step", meta.get("step"))]
    rows += sorted((meta.get("training") or {}).items())
    rows = [(k, v) for k, v in rows if v not in (None, "", {})]
    if not rows:
        return []
    return ["## Training", "", "| setting | value |", "|---|---|",
            *(f"| {k} | `{v}` |" for k, v in rows), ""]


def _tags(meta: dict[str, Any]) -> list[str]:
    ids = meta.get("tag_ids") or {}
    lines = ["## Tags and layout", ""]
    if ids:
        lines += ["Each tag is one special token:", "", "| tag | token id |", "|---|---|",
                  *(f"| `{t}` | {i} |" for t, i in ids.items()), ""]
    if meta.get("mode") in LAYOUTS:
        lines += [f"Trained in the {LAYOUTS[meta['mode']]}.", ""]
    return lines


def _evals(meta: dict[str, Any]) -> list[str]:
    lines = []
    for stage, ev in (meta.get("evals") or {}).items():
        lines += [f"## Evaluation ({stage})", "", _spaced(ev.get("table", "")), ""]
    return lines


def _spaced(markdown: str) -> str:
    """A blank line before each table, so that a caption line does not swallow it."""
    out: list[str] = []
    for line in markdown.strip().splitlines():
        if line.startswith("|") and out and out[-1] and not out[-1].startswith("|"):
            out.append("")
        out.append(line)
    return "\n".join(out)


def _usage(meta: dict[str, Any]) -> list[str]:
    mode = meta.get("mode") or "structured"
    return [
        "## Load with transformers", "", "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
        'tok = AutoTokenizer.from_pretrained("MODEL_DIR")',
        'model = AutoModelForCausalLM.from_pretrained("MODEL_DIR")',
        'inputs = tok.apply_chat_template([{"role": "user", "content": "What is 12 * 7?"}],',
        '                                 add_generation_prompt=True, return_tensors="pt",',
        "                                 return_dict=True)",
        "out = model.generate(**inputs, max_new_tokens=256)",
        'print(tok.decode(out[0, inputs["input_ids"].shape[1]:]))', "```", "",
        "`MODEL_DIR` is this directory. `generate` decodes a block's paths one after another "
        "(the causal layout).", "",
        "## Serve in parallel mode", "",
        "In the structured layout each path sees only the shared prefix, which needs the "
        "parallel-r1 engine:", "", "```bash",
        f"parallel-r1 serve MODEL_DIR --mode {mode} --paths 2   # OpenAI-compatible, port 8000",
        "```", "",
        "or in Python: `pr.TorchEngine(model, tok).generate([pr.apply_template(tok, question)], "
        "pr.SamplingParams())` after `import parallel_r1 as pr` (its README: \"Use it from "
        "Python\").",
        "",
        *(["Framework versions: " + ", ".join(
            f"{k} {meta[k]}" for k in ("transformers", "trl", "torch") if meta.get(k)), ""]
          if meta.get("transformers") else []),
    ]


def write_card(directory: str | os.PathLike, meta: dict[str, Any] | None = None) -> Path:
    """Write `README.md` into a model directory from `meta` (default: its parallel_r1.json).

    Returns:
        The card's path.
    """
    from parallel_r1.files import write_text_atomic
    from parallel_r1.models.load import read_provenance

    directory = Path(directory)
    meta = meta if meta is not None else (read_provenance(directory) or {})
    path = directory / CARD_FILE
    write_text_atomic(path, render_card(meta, directory.name))
    return path


def record_eval(directory: str | os.PathLike, name: str, summary: dict[str, Any],
                table: str) -> Path:
    """Add an evaluation (its summary, markdown table and settings) to a model's provenance and
    card; it becomes the model's `last_eval`, whose settings `parallel-r1 eval MODEL` replays.

    Raises:
        FileNotFoundError: `directory` has no parallel_r1.json (not written by `models.save`).
    """
    from parallel_r1.files import write_text_atomic
    from parallel_r1.models.load import PROVENANCE_FILE, read_provenance
    from parallel_r1.models.settings import EVAL_SETTINGS

    directory = Path(directory)
    meta = read_provenance(directory)
    if meta is None:
        raise FileNotFoundError(f"{directory / PROVENANCE_FILE} does not exist")
    settings = {k: v for k, v in (summary.get("config") or {}).items() if k in EVAL_SETTINGS}
    summary = {k: v for k, v in summary.items() if k in ("benchmarks", "avg", "graders")}
    meta.setdefault("evals", {})[name] = {"summary": summary, "table": table,
                                          "settings": settings}
    meta["last_eval"] = name
    write_text_atomic(directory / PROVENANCE_FILE,
                      json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
    return write_card(directory, meta)
