"""YAML that remembers where each value was written, so validation errors can say file:line.

Contract:
- :func:`load_located` parses one YAML document (safe tags only) into plain Python values,
  except that mappings become :class:`LocatedMap` and sequences :class:`LocatedList`; both are
  ordinary ``dict`` / ``list`` subclasses that also carry the 1-based line of the collection
  (``.line``) and of each key / item (``.line_of(key)`` / ``.item_line(index)``).
- Scalars are constructed exactly as ``yaml.safe_load`` would (``true`` is a bool, ``10`` an
  int, ``10.2.2.1`` a string).
- Invalid YAML is a :class:`~ipsec_doctor.errors.ConfigError` ``"<source>:<line>: invalid
  YAML: <problem>"``; duplicate keys in one mapping are errors too (PyYAML would silently keep
  the last one, hiding a typo).
"""

from __future__ import annotations

from typing import Any

import yaml

from ipsec_doctor.errors import ConfigError


class LocatedMap(dict[str, Any]):
    """A mapping with the line of itself and of each of its keys."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[str, int] = {}

    def line_of(self, key: str) -> int:
        """The line of ``key`` (the mapping's own line when the key is absent)."""
        return self.key_lines.get(key, self.line)


class LocatedList(list[Any]):
    """A sequence with the line of itself and of each of its items."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []

    def item_line(self, index: int) -> int:
        """The line of item ``index`` (the sequence's own line when out of range)."""
        if 0 <= index < len(self.item_lines):
            return self.item_lines[index]
        return self.line


def line_of(value: Any, default: int = 0) -> int:
    """The line a located collection starts on, or ``default`` for a scalar."""
    if isinstance(value, LocatedMap | LocatedList):
        return value.line
    return default


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, source: str) -> None:
        self.loader = loader
        self.source = source

    def build(self, node: yaml.Node) -> Any:
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
            result = LocatedMap(line)
            for key_node, value_node in node.value:
                key = self.loader.construct_object(key_node, deep=True)
                key_line = key_node.start_mark.line + 1
                if not isinstance(key, str | int | float | bool) or key is None:
                    raise ConfigError(f"{self.source}:{key_line}: mapping keys must be scalars")
                text = str(key)
                if text in result:
                    raise ConfigError(
                        f"{self.source}:{key_line}: duplicate key {text!r} "
                        f"(first on line {result.key_lines[text]})"
                    )
                result[text] = self.build(value_node)
                result.key_lines[text] = key_line
            return result
        if isinstance(node, yaml.SequenceNode):
            items = LocatedList(line)
            for item in node.value:
                items.append(self.build(item))
                items.item_lines.append(item.start_mark.line + 1)
            return items
        return self.loader.construct_object(node, deep=True)


def load_located(text: str, source: str) -> Any:
    """Parse ``text`` (one YAML document) keeping lines; ``source`` names it in errors."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        return _Builder(loader, source).build(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ConfigError(f"{where}: invalid YAML: {error.problem or error}") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: invalid YAML: {error}") from error
    finally:
        loader.dispose()
