"""Recipe and grid YAML bounded whatever the text: alias bombs and recursive aliases refused in
small memory, naming the file and the alias's line; harmless aliases load with true line numbers."""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

import pytest

from parallel_r1.errors import ConfigError
from parallel_r1.train.grid import load_grid
from parallel_r1.train.recipe import load

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from hostile_inputs import bomb  # noqa: E402  (the bench's alias-bomb writer, one copy)


def refused_peak(load_file, *args) -> int:
    """Peak bytes Python allocated while `load_file(*args)` refused its file."""
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError):
            load_file(*args)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_the_353_byte_bomb_and_a_9x9_one_are_refused_in_small_memory(tmp_path):
    seven = tmp_path / "seven.yaml"
    seven.write_text(bomb(7, 9))
    assert len(seven.read_bytes()) <= 353  # 9 ** 7 = 4.8M leaves
    nine = tmp_path / "nine.yaml"
    nine.write_text(bomb(9, 9))  # 9 ** 9 = 387M leaves
    for path in (seven, nine):
        with pytest.raises(ConfigError, match="alias expands the document beyond") as err:
            load(path)
        assert err.value.file == str(path) and err.value.line is not None
        text = path.read_text().splitlines()[err.value.line - 1]
        assert ": &" in text and "[*" in text  # the line of an alias
        assert refused_peak(load, path) < 8 << 20
    grid = tmp_path / "grid.yaml"
    head = "name: g\narms:\n- name: x\n  recipe: r.yaml\n  title:\n"
    grid.write_text(bomb(9, 9, head=head).replace("\n   ", "\n    "))
    assert refused_peak(load_grid, grid) < 8 << 20
    with pytest.raises(ConfigError, match="alias expands") as err:
        load_grid(grid, ["seeds=[0]"])
    assert err.value.file == str(grid)


def test_the_line_map_walks_each_node_once():
    from parallel_r1.train.yaml_text import load_yaml

    text = bomb(4, 9)  # 9 ** 4 = 6561 leaves: under the limit, so it loads
    data, lines = load_yaml(text, "f.yaml")
    assert len(data["stages"][0]["eval"]["e"]) == 9
    assert len(lines) < 80  # the anchors' paths only, not one entry per expanded node
    assert lines["stages.0.eval.e"] == ("f.yaml", 9)
    assert lines["stages.0.eval.b.8"] == ("f.yaml", 6)
    with pytest.raises(ConfigError, match="beyond 1,000 nodes") as err:
        load_yaml(text, "f.yaml", limit=1000)
    assert err.value.line == 8


def test_recursive_alias_is_refused_with_its_line(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: r\nstages:\n- &s\n  kind: eval\n  eval: [*s]\n")
    with pytest.raises(ConfigError, match="recursive alias") as err:
        load(path)
    assert (err.value.file, err.value.line) == (str(path), 5)
    path.write_text("name: r\nstages: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply") as err:
        load(path)
    assert err.value.file == str(path)


def test_a_recipe_with_harmless_aliases_loads_with_true_lines(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text(
        "name: aliased\n"                                    # 1
        "model: {name: tiny}\n"                              # 2
        "stages:\n"                                          # 3
        "- &base\n"                                          # 4
        "  kind: eval\n"                                     # 5
        "  name: e1\n"                                       # 6
        "  eval: &ev {samples: 2, limit: 4}\n"              # 7
        "- <<: *base\n"                                      # 8
        "  name: e2\n"                                       # 9
        "  eval: *ev\n"                                      # 10
        "  temperature: 0.5\n")                              # 11
    recipe = load(path, ["stages.e2.eval.limit=3"])
    assert [s.name for s in recipe.stages] == ["e1", "e2"]
    assert recipe.stages[0].eval == {"samples": 2, "limit": 4}  # one path's override only
    assert recipe.stages[1].eval == {"samples": 2, "limit": 3}
    assert recipe.where["stages.0.eval"] == (str(path), 7)
    assert recipe.where["stages.1.temperature"] == (str(path), 11)
    assert recipe.where["stages.1.eval"] == (str(path), 10)
    bad = tmp_path / "bad.yaml"
    bad.write_text(path.read_text().replace("temperature: 0.5", "learning_rate: -1"))
    with pytest.raises(ConfigError, match="learning_rate") as err:
        load(bad)
    assert (err.value.file, err.value.line) == (str(bad), 11)


def test_a_huge_recipe_is_refused_before_parsing(tmp_path):
    """4.6 MB of plain keys parsed for 13 s in 450 MB before the node limit spoke (issue 20)."""
    path = tmp_path / "big.yaml"
    path.write_text("".join(f"k{i}: {i}\n" for i in range(300_000)))
    tracemalloc.start()
    with pytest.raises(ConfigError, match=r"big\.yaml.*over the"):
        load(str(path))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 40 * 2 ** 20  # the text itself (~3 MB, read once) and little else
