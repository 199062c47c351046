"""Which folders are ours (`parallel_r1.outputs`): old outputs still resume, look-alikes are
refused, and only names from `temp_name` count as our temporaries."""

from __future__ import annotations

import json

import pytest

from parallel_r1.outputs import ForeignFolderError, claim, is_temporary, temp_name

OLD_OUTPUTS = {  # what older versions left: always their writer lock
    "run": {"state.json": json.dumps({"stages": {"sft": {"status": "done"}}}),
            ".parallel-r1.lock": ""},
    "locked": {".parallel-r1.lock": "", "summary.json": "{}"},
    "grid": {"grid-state.json": json.dumps({"nodes": {}, "sessions": []}), "grid.lock": ""},
    "eval": {"config.json": json.dumps({"sampling": {"model": "m"}}), "samples.jsonl": "",
             ".parallel-r1.lock": ""},
    "demo": {"run/state.json": json.dumps({"stages": {}}), "run/.parallel-r1.lock": "",
             "table.md": "| x |"},
}
LOOK_ALIKES = {  # a user's folders with files of the same names, but no lock of ours
    "state": {"state.json": json.dumps({"window": [1, 2]})},
    "stages": {"state.json": json.dumps({"stages": {"build": "done"}}), "notes.txt": "mine"},
    "config": {"config.json": json.dumps({"sampling": {}}), "table.md": "| mine |"},
    "eval": {"config.json": json.dumps({"sampling": {}}), "samples.jsonl": "{}"},
    "grid": {"grid-state.json": "not json"},
    "grid_lock": {"grid.lock": "", "config.json": "{}", "table.md": "| mine |"},
    "demo": {"run/state.json": json.dumps({"stages": {}}), "table.md": "| mine |"},
}


def make(folder, files):
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize("kind", sorted(OLD_OUTPUTS))
def test_outputs_of_older_versions_are_adopted(tmp_path, kind):
    folder = claim(make(tmp_path / kind, OLD_OUTPUTS[kind]))
    assert (folder / ".parallel-r1-output").is_file()


@pytest.mark.parametrize("kind", sorted(LOOK_ALIKES))
def test_a_users_look_alike_files_are_refused(tmp_path, kind):
    folder = make(tmp_path / kind, LOOK_ALIKES[kind])
    with pytest.raises(ForeignFolderError, match="is not empty and was not written by"):
        claim(folder)
    assert not (folder / ".parallel-r1-output").exists()


def test_a_file_is_refused_and_new_or_empty_folders_are_claimed(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ForeignFolderError, match="is a file; give a folder"):
        claim(tmp_path / "f")
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "new" / "deeper"):
        assert (claim(folder) / ".parallel-r1-output").is_file()


def test_only_names_from_temp_name_are_temporaries(tmp_path):
    for kind, suffix in (("tmp", ""), ("old", ""), ("tmp", ".png")):
        assert is_temporary(temp_name(tmp_path / "model", kind, suffix).name)
    for name in (".config.old-laptop", ".holiday.2024.tmp.png", ".x.y.tmp", ".model.tmp-1-ab",
                 "model.parallel-r1-tmp-1", ".parallel-r1-tmp-1"):
        assert not is_temporary(name), name
