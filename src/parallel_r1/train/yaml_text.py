"""YAML text -> (data, line map), bounded in time and memory whatever the text.

YAML aliases share nodes, so a few hundred bytes can stand for billions of nodes (an "alias
bomb": `b: &b [*a, *a, ...]`, level upon level). Composing is linear in the text; what explodes is
anything that walks the tree with aliases expanded (PyYAML's merge keys `<<:` do so while
constructing). So the composed node graph is walked once, each node visited once (memoised by
identity), counting the size the tree would have with every alias expanded; beyond `MAX_NODES` the
text is refused, naming the alias that crossed the limit. A recursive alias is refused too. Only
what passed is constructed, and it comes back as a plain tree (aliases copied), so an override of
one path never changes another. Pure Python + yaml; no torch.
"""

from __future__ import annotations

from typing import Any

import yaml

from parallel_r1.errors import ConfigError

MAX_NODES = 100_000  # expanded nodes; a real recipe or grid has a few hundred
MAX_BYTES = 1 << 20  # a real recipe or grid is a few kilobytes; parsing costs ~90x the text
Where = dict[str, tuple[str | None, int | None]]  # dotted field -> (file, 1-based line)


class _Loader(yaml.SafeLoader):
    """A safe loader that records the line of every alias, in document order."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.alias_lines: list[int] = []

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.alias_lines.append(self.peek_event().start_mark.line + 1)
        return super().compose_node(parent, index)


class _Walk:
    """One depth-first pass over the composed graph in document order (the order the composer
    met the aliases): the expanded size so far, the line map of each node's first path."""

    def __init__(self, file: str, alias_lines: list[int], limit: int):
        self.file, self.alias_lines, self.limit = file, alias_lines, limit
        self.sizes: dict[int, int] = {}  # id(node) -> expanded size, once complete
        self.open: set[int] = set()      # nodes being walked (a repeat is a recursive alias)
        self.num_aliases = 0
        self.total = 0
        self.lines: Where = {}

    def edge(self, node: yaml.Node, dotted: str | None, line: int | None) -> None:
        """Follow one edge of the graph to `node`, named `dotted` (None: a key), found at `line`
        (None: where the node is written, or the alias that names it)."""
        is_alias = id(node) in self.sizes or id(node) in self.open  # not walked again
        at = node.start_mark.line + 1
        if is_alias:
            at = self.alias_lines[self.num_aliases] if self.num_aliases < len(
                self.alias_lines) else at
            self.num_aliases += 1
        if dotted is not None:
            self.lines.setdefault(dotted, (self.file, line or at))
        if is_alias:
            if id(node) in self.open:
                raise ConfigError("recursive alias: the value contains itself", file=self.file,
                                  line=at)
            self.total += self.sizes[id(node)]
            if self.total > self.limit:
                raise ConfigError(f"this alias expands the document beyond {self.limit:,} nodes; "
                                  "write the values out (a real file has a few hundred)",
                                  file=self.file, line=at)
            return
        self.total += 1
        if self.total > self.limit:
            raise ConfigError(f"the document holds more than {self.limit:,} nodes",
                              file=self.file, line=at)
        before = self.total
        self.open.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                scalar = isinstance(key, yaml.ScalarNode)  # a composite key is refused later
                self.edge(key, None, None)
                name = f"{dotted}.{key.value}" if dotted else str(key.value)
                self.edge(value, name if scalar and dotted is not None else None,
                          key.start_mark.line + 1)
        elif isinstance(node, yaml.SequenceNode):
            for i, value in enumerate(node.value):
                self.edge(value, f"{dotted}.{i}" if dotted is not None else None, None)
        self.open.discard(id(node))
        self.sizes[id(node)] = 1 + self.total - before


def _plain(data: Any) -> Any:
    """A copy of constructed data in which no two paths share a list or dict."""
    if isinstance(data, dict):
        return {k: _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    return data


def load_yaml(text: str, file: str, *, limit: int = MAX_NODES) -> tuple[Any, Where]:
    """Parse YAML text safely, with the line of every key and list item.

    Args:
        text: the YAML text (a recipe, a grid, an override value).
        file: how messages name the text (a path; "" names none, as for an override value).
        limit: the most nodes the document may have with its aliases expanded.

    Returns:
        (data, lines): the data as `yaml.safe_load` builds it (None for an empty text), with no
        list or dict shared between two paths; `lines` maps each dotted path ("stages.0.data")
        to (file, line). Paths under the second use of an alias have no line (only the anchor's).

    Raises:
        ConfigError: longer than MAX_BYTES, not YAML, nested too deeply, an alias expanding
            beyond `limit` nodes or a recursive one; names the file and the line.
    """
    if len(text) > MAX_BYTES:  # refused before parsing: the parser's memory grows with the text
        raise ConfigError(f"{len(text):,} characters, over the {MAX_BYTES:,} a recipe or grid "
                          "may have (a real one is a few kilobytes)", file=file)
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, {}
        walk = _Walk(file, loader.alias_lines, limit)
        walk.edge(root, "", None)
        data = _plain(loader.construct_document(root))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"not valid YAML: {problem}", file=file,
                          line=mark.line + 1 if mark else None) from None
    except RecursionError:
        raise ConfigError("YAML nested too deeply", file=file) from None
    finally:
        loader.dispose()
    return data, {k: v for k, v in walk.lines.items() if k}
