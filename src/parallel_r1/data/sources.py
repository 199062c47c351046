"""Data sets by name or path -> a list of `Record` (id, question, answer, source, extras).

A name resolves in this order: an explicit local file or directory (JSONL, JSON, Parquet, the JSON
kinds optionally gzipped); the offline copy in the local data dir (`local_dir`, else
$PARALLEL_R1_DATA, else `shared/data` beside the repository); the gzipped copy packaged with this
library (`data/packaged/`, for sets with no hub copy); the hub layout under a local mirror dir
($PARALLEL_R1_HUB_MIRROR); the hub itself through `datasets.load_dataset`. A name found nowhere is
refused with what to do. Hub rows go through the data set's own column mapping whether they come
from a mirror or from the hub. Every malformed row is a `DataError` naming file, line, field.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parallel_r1.data.rows import SUFFIXES, files_in, iter_json_rows  # noqa: F401  (re-exported)
from parallel_r1.errors import ConfigError, DataError
from parallel_r1.files import write_jsonl_atomic as write_jsonl  # noqa: F401  (re-exported)
from parallel_r1.format.answer import is_blank_answer
from parallel_r1.registry import Registry

log = logging.getLogger(__name__)
DATA_ENV = "PARALLEL_R1_DATA"
HUB_MIRROR_ENV = "PARALLEL_R1_HUB_MIRROR"
PACKAGED_DIR = Path(__file__).resolve().parent / "packaged"  # gzipped copies: <local file>.gz
_GSM8K_ANSWER = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)
_INTEGER = re.compile(r"-?\d+")
EMPTY = "empty: every row needs a question and a gold answer; fill it in or drop the row"


@dataclass(frozen=True)
class Record:
    """One problem: a stable id, the raw question (no template), the gold answer as a string."""

    id: str
    question: str
    answer: str
    source: str
    extras: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSONL form: the four fields, then the extras flat beside them."""
        return {"id": self.id, "source": self.source, "question": self.question,
                "answer": self.answer, **self.extras}


RowMapper = Callable[[dict, int, str], "Record | None"]


@dataclass(frozen=True)
class DatasetSpec:
    """Where a named data set lives and how its hub columns map onto `Record`."""

    hub_name: str | None            # e.g. "openai/gsm8k"; None when only a local copy exists
    hub_config: str | None          # the hub's config name ("main" for GSM8K)
    splits: dict[str, str]          # our split -> the hub's split
    local_files: dict[str, str]     # our split -> file name in the local data dir
    hub_files: dict[str, str]       # our split -> glob inside the hub repo (used for mirrors)
    map_row: RowMapper              # (hub row, index, split) -> Record, or None to skip the row
    dedup_ids: bool = False         # the hub copy repeats rows (DAPO): keep the first per id


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def parse_gsm8k_answer(solution: str) -> str:
    """The final number of a GSM8K reference solution ("... #### 1,234" -> "1234").

    Raises ValueError when there is no "#### N" line.
    """
    match = _GSM8K_ANSWER.search(solution)
    if not match:
        raise ValueError("no '#### N' line in the solution")
    return match.group(1).replace(",", "").strip()


class _RowError(ValueError):
    """A hub row the mapping cannot read; `map_hub_rows` adds where it came from."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def _column(row: dict, names: tuple[str, ...], index: int) -> Any:
    for name in names:
        if name in row and row[name] is not None:
            return row[name]
    raise _RowError("missing required column", names[0])


def _map_gsm8k(row: dict, index: int, split: str) -> Record:
    solution = str(_column(row, ("answer",), index))
    try:
        answer = parse_gsm8k_answer(solution)
    except ValueError as exc:
        raise _RowError(str(exc), "answer") from None
    return Record(f"gsm8k-{split}-{index:05d}", str(_column(row, ("question",), index)), answer,
                  "openai/gsm8k", {"solution": solution})


def _dapo_question(prompt: str) -> str:
    # The hub wraps each problem in an instruction paragraph before and a reminder after; the
    # upstream kept only the text between the first two blank lines, which cut 293 problems.
    # Here we strip the wrapper instead, so multi-paragraph problems survive whole.
    parts = prompt.split("\n\n")
    if len(parts) >= 3 and parts[-1].lstrip().startswith("Remember"):
        return "\n\n".join(parts[1:-1]).strip()
    return prompt.strip()


def _map_dapo(row: dict, index: int, split: str) -> Record:
    prompt = _column(row, ("prompt",), index)
    text = prompt[0]["content"] if isinstance(prompt, list) else str(prompt)
    rid = str(_column(row, ("extra_info",), index).get("index", index))
    answer = str(_column(row, ("reward_model",), index)["ground_truth"])
    return Record(rid, _dapo_question(text), answer, "math_dapo", {"suspect_truncated": False})


def _map_problem(prefix: str, source: str, repeats: int, integer_only: bool = False) -> RowMapper:
    def map_row(row: dict, index: int, split: str) -> Record | None:
        answer = str(_column(row, ("answer", "Answer"), index)).strip()
        if integer_only and not _INTEGER.fullmatch(answer):
            return None
        question = str(_column(row, ("problem", "question", "Problem"), index))
        extras = {k: row[k] for k in ("solution", "subject", "level", "unique_id") if k in row}
        extras |= {"eval_repeats": repeats, "suspect_truncated": False}
        return Record(f"{prefix}-{index:03d}", question, answer, source, extras)

    return map_row


def _add(name: str, **kwargs: Any) -> None:
    DATASETS.add(name, DatasetSpec(**kwargs))


_add("gsm8k", hub_name="openai/gsm8k", hub_config="main",
     splits={"train": "train", "test": "test"},
     local_files={"train": "gsm8k_train.jsonl", "test": "gsm8k_test.jsonl"},
     hub_files={"train": "main/train-*.parquet", "test": "main/test-*.parquet"},
     map_row=_map_gsm8k)
_add("dapo-math-17k", hub_name="BytedTsinghua-SIA/DAPO-Math-17k", hub_config=None,
     splits={"train": "train"}, local_files={"train": "dapo_math17k_dedup_train.jsonl"},
     hub_files={"train": "data/*.parquet"}, map_row=_map_dapo, dedup_ids=True)
_add("math500", hub_name="HuggingFaceH4/MATH-500", hub_config=None, splits={"test": "test"},
     local_files={}, hub_files={"test": "test.jsonl"},
     map_row=_map_problem("math500", "HuggingFaceH4/MATH-500", 1))
# MATH300: the integer-answer subset of MATH-500 (the offline copy has the paper's 316 rows).
_add("math300", hub_name="HuggingFaceH4/MATH-500", hub_config=None, splits={"test": "test"},
     local_files={"test": "math300.jsonl"}, hub_files={"test": "test.jsonl"},
     map_row=_map_problem("math300", "HuggingFaceH4/MATH-500", 1, integer_only=True))
_add("aime24", hub_name="HuggingFaceH4/aime_2024", hub_config=None, splits={"test": "train"},
     local_files={"test": "aime24.jsonl"}, hub_files={"test": "data/train-*.parquet"},
     map_row=_map_problem("aime24", "HuggingFaceH4/aime_2024", 16))
_add("aime25", hub_name="math-ai/aime25", hub_config=None, splits={"test": "test"},
     local_files={"test": "aime25.jsonl"}, hub_files={"test": "test.jsonl"},
     map_row=_map_problem("aime25", "math-ai/aime25", 16))
_add("amc23", hub_name="math-ai/amc23", hub_config=None, splits={"test": "test"},
     local_files={"test": "amc23.jsonl"}, hub_files={"test": "test.jsonl"},
     map_row=_map_problem("amc23", "math-ai/amc23", 16))
# The 341-trace pilot of the paper's cold-start set: no hub copy, so it ships gzipped in
# data/packaged/ (provenance and licence: data/packaged/NOTICE.md); map_row is never reached.
_add("parallel-gsm8k-v2", hub_name=None, hub_config=None, splits={"train": "train"},
     local_files={"train": "parallel_gsm8k_v2_sft.jsonl"}, hub_files={}, map_row=_map_gsm8k)


def default_data_dir() -> Path | None:
    """$PARALLEL_R1_DATA, else `shared/data` beside the repository when it exists, else None."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    beside = Path(__file__).resolve().parents[3].parent / "shared" / "data"
    return beside if beside.is_dir() else None


def _data_dir(local_dir: str | Path | None) -> Path | None:
    """The data dir to look in; one named explicitly must exist (never skipped silently)."""
    named, field = (local_dir, "local_dir") if local_dir else (os.environ.get(DATA_ENV), DATA_ENV)
    if not named:
        return default_data_dir()
    if not Path(named).expanduser().is_dir():
        raise ConfigError(f"not a directory: {named}", field=field)
    return Path(named).expanduser()


def _record_from_row(row: dict, number: int, path: Path) -> Record:
    values = {}
    for name in ("question", "answer"):
        value, where = row.get(name), {"file": str(path), "line": number, "field": name}
        if value is None or isinstance(value, str) and not value.strip():  # a blank gold answer
            raise DataError("missing required field" if value is None else EMPTY, **where)
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise DataError(f"expected a string, got {type(value).__name__}", **where)
        values[name] = str(value)
    if "####" in values["answer"]:
        try:
            values["answer"] = parse_gsm8k_answer(values["answer"])
        except ValueError as exc:
            raise DataError(str(exc), file=str(path), line=number, field="answer") from None
    if is_blank_answer(values["answer"]):  # "#### " parsed, "\\boxed{}", "$$", "\u200b"
        raise DataError(EMPTY, file=str(path), line=number, field="answer")
    extras = {k: v for k, v in row.items() if k not in ("id", "question", "answer", "source")}
    return Record(str(row.get("id", f"{path.stem}-{number:05d}")), values["question"],
                  values["answer"], str(row.get("source", path.stem)), extras)


def read_records(path: str | Path, *, split: str | None = None) -> list[Record]:
    """Records of a file or directory in our export schema (id, source, question, answer, ...).

    `id` defaults to "<file stem>-<line>" and `source` to the file stem; a GSM8K "#### N" answer
    is reduced to N. With `split`, a directory keeps only files whose name starts with it.

    Raises:
        DataError: unreadable, non-UTF-8 or empty file, a missing or blank question/answer, or
            a duplicate id (each names the file and line).
    """
    records: list[Record] = []
    seen: dict[str, str] = {}
    for file in files_in(Path(path), split):
        rows = list(iter_json_rows(file))
        if not rows:
            raise DataError("empty file: no records", file=str(file))
        for number, row in rows:
            record = _record_from_row(row, number, file)
            if record.id in seen:
                raise DataError(f"duplicate id '{record.id}' (first at {seen[record.id]})",
                                file=str(file), line=number, field="id")
            seen[record.id] = f"{file}:{number}"
            records.append(record)
    return records


def read_hub_rows(spec: DatasetSpec, split: str, mirror: Path | None, *,
                  name: str | None = None) -> tuple[list[dict], str]:
    """The hub's raw rows for one split, from a mirror dir in the hub's layout or the hub
    (`name`: ours for the data set, for errors; default the hub id).

    Returns:
        (rows, where) with `where` the mirror path or "hub:<name>".
    Raises:
        DataError: the mirror lacks the split's files, the data set has no hub copy, or the hub
            cannot be reached (`data.hub.download_rows`).
    """
    if spec.hub_name is None:
        raise DataError(f"no hub copy of this data set; set {DATA_ENV} to a folder holding its file")
    if mirror is not None:
        root = mirror / spec.hub_name
        files = sorted(root.glob(spec.hub_files[split]))
        if not files:
            raise DataError(f"hub mirror has no files matching '{spec.hub_files[split]}'",
                            file=str(root))
        return [row for file in files for _, row in iter_json_rows(file)], str(root)
    from parallel_r1.data.hub import download_rows

    file, data_dir = spec.local_files.get(split), default_data_dir()
    instead = (_offline_hint(file, data_dir, lead="").lstrip("; ") or f"set {DATA_ENV}=DIR") + (
        f", or set {HUB_MIRROR_ENV}=DIR to a mirror of the hub's files")
    rows = download_rows(name or spec.hub_name, spec.hub_name, spec.hub_config, spec.splits[split], instead=instead)
    return rows, f"hub:{spec.hub_name}"


def map_hub_rows(spec: DatasetSpec, rows: list[dict], split: str, where: str) -> list[Record]:
    """Apply the spec's column mapping to hub rows (dropping repeated ids when the spec says so)."""
    records, seen = [], set()
    for index, row in enumerate(rows):
        try:
            record = spec.map_row(row, index, split)
            if record is not None and (is_blank_answer(record.answer) or
                                       not record.question.strip()):
                raise _RowError(EMPTY, "answer" if is_blank_answer(record.answer) else "question")
        except _RowError as exc:
            raise DataError(str(exc), file=where, line=index + 1, field=exc.field) from None
        if record is None or (spec.dedup_ids and record.id in seen):
            continue
        seen.add(record.id)
        records.append(record)
    return records


def resolve(name_or_path: str | Path, *, split: str | None = None,
            local_dir: str | Path | None = None,
            hub_mirror: str | Path | None = None) -> tuple[str, str]:
    """Where a data set would be read from, found without reading it (the order above).

    Returns:
        (kind, location): "file" (the path given), "local" (its file in the data dir),
        "packaged" (the gzipped copy in this package), "mirror" (its files under the hub
        mirror), "hub" (a download by `datasets`; the hub id), or "missing" with, as location,
        the one-line reason and what to do.
    Raises:
        UnknownNameError: neither an existing path nor a known name. ConfigError: an unknown
            split, or a data dir (`local_dir`, else $PARALLEL_R1_DATA) that is not a directory.
    """
    if Path(name_or_path).exists():
        return "file", str(name_or_path)
    name = str(name_or_path)
    spec = DATASETS.get(name)
    split = _check_split(spec, name, split)
    data_dir = _data_dir(local_dir)
    file = spec.local_files.get(split)
    if file and data_dir is not None and (data_dir / file).exists():
        return "local", str(data_dir / file)
    if file and (PACKAGED_DIR / f"{file}.gz").is_file():
        return "packaged", str(PACKAGED_DIR / f"{file}.gz")
    mirror = hub_mirror or os.environ.get(HUB_MIRROR_ENV)
    if spec.hub_name and mirror:
        root = Path(mirror) / spec.hub_name
        if any(root.glob(spec.hub_files[split])):
            return "mirror", str(root / spec.hub_files[split])
        return "missing", (f"{root}: hub mirror has no files matching '{spec.hub_files[split]}' "
                           f"(${HUB_MIRROR_ENV}){_offline_hint(file, data_dir)}")
    if spec.hub_name and importlib.util.find_spec("datasets") is None:
        return "missing", (f"data set '{name}' needs a hub download, and the `datasets` package "
                           f"is not installed: pip install 'parallel-r1[data]'"
                           f"{_offline_hint(file, data_dir)}")
    if spec.hub_name:
        return "hub", spec.hub_name
    return "missing", (f"data set '{name}' (split {split}) is not available: no hub copy"
                       f"{_offline_hint(file, data_dir, lead='')}")


def _offline_hint(file: str | None, data_dir: Path | None, lead: str = "or ") -> str:
    if not file:
        return ""
    where = f"none in {data_dir}" if data_dir else "no data dir given"
    return f"; {lead}give --data-dir DIR or set {DATA_ENV}=DIR to a folder holding {file} ({where})"


def _check_split(spec: DatasetSpec, name: str, split: str | None) -> str:
    split = split or next(iter(spec.splits))  # the first split is the default
    if split not in spec.splits:
        raise ConfigError(f"data set '{name}' has no split '{split}'; known: "
                          f"{', '.join(spec.splits)}", field="split")
    return split


def load_records(name_or_path: str | Path, *, split: str | None = None,
                 local_dir: str | Path | None = None, drop_suspect: bool = False,
                 hub_mirror: str | Path | None = None) -> tuple[list[Record], dict[str, Any]]:
    """Load a data set by registered name or path, following the resolution order above.

    Args:
        name_or_path: a name in `DATASETS` (see `DATASETS.names()`) or a JSONL/JSON/Parquet path.
        split: the split of a named set (default: its first); filters a directory's files.
        local_dir: the offline data dir (default $PARALLEL_R1_DATA or `shared/data`).
        drop_suspect: drop records flagged `suspect_truncated` instead of keeping them.
        hub_mirror: a local dir in the hub's layout (default $PARALLEL_R1_HUB_MIRROR).
    Returns:
        (records, metrics) with metrics num_rows, num_suspect, num_dropped, resolved_from, location.
    Raises:
        DataError: malformed input, or a name found nowhere (says what to do).
        UnknownNameError: neither a path nor a known name.
    """
    mirror = hub_mirror or os.environ.get(HUB_MIRROR_ENV)
    kind, location = resolve(name_or_path, split=split, local_dir=local_dir, hub_mirror=mirror)
    if kind == "missing":
        raise DataError(location)
    if kind in ("file", "local", "packaged"):
        records = read_records(location, split=split if kind == "file" else None)
    else:
        spec = DATASETS.get(str(name_or_path))
        split = _check_split(spec, str(name_or_path), split)
        rows, location = read_hub_rows(spec, split, Path(mirror) if kind == "mirror" else None,
                                       name=str(name_or_path))
        records = map_hub_rows(spec, rows, split, location)
    suspect = [r for r in records if r.extras.get("suspect_truncated")]
    if suspect:
        log.warning("%s: %d records flagged suspect_truncated (%s)", location, len(suspect),
                    "dropped" if drop_suspect else "kept")
    if drop_suspect:
        records = [r for r in records if not r.extras.get("suspect_truncated")]
    return records, {"num_rows": len(records), "num_suspect": len(suspect),
                     "num_dropped": len(suspect) if drop_suspect else 0,
                     "resolved_from": kind, "location": location}


def load_dataset(name_or_path: str | Path, *, split: str | None = None,
                 local_dir: str | Path | None = None, drop_suspect: bool = False,
                 hub_mirror: str | Path | None = None) -> list[Record]:
    """`load_records` without the metrics (the suspect count is logged)."""
    return load_records(name_or_path, split=split, local_dir=local_dir,
                        drop_suspect=drop_suspect, hub_mirror=hub_mirror)[0]
