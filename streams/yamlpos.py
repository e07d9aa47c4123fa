"""Where a validation error stands in a YAML file: the line of a node by its path."""

from __future__ import annotations

from collections.abc import Iterable

import yaml


def node_line(node: yaml.Node | None, loc: Iterable[int | str]) -> int | None:
    """1-based line of the YAML node at ``loc`` (or of its deepest existing parent): keys
    of mappings compare as text, integers index sequences."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    current: yaml.Node = node
    for part in loc:
        nxt: yaml.Node | None = None
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                if key_node.value == str(part):
                    nxt = value_node
                    line = key_node.start_mark.line + 1
                    break
        elif (
            isinstance(current, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(current.value)
        ):
            nxt = current.value[part]
            line = nxt.start_mark.line + 1
        if nxt is None:
            break
        current = nxt
    return line
