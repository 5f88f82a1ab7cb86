"""Bounded YAML for untrusted input, in three passes: the event stream (depth), the node
graph (aliases expanded by count, never built; recursive aliases and duplicate keys
refused), then construction with safe tags only. Part of nixlayer/safeload.py's one
guarded reader, kept apart so that start-up does not import PyYAML."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from nixlayer.errors import InputError
from nixlayer.safeload import MAX_DEPTH, MAX_NODES, check_data, show, where_prefix

MERGE_TAG = "tag:yaml.org,2002:merge"


# libyaml's parser when PyYAML has it (several times faster); the checks are the same.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _line(node: Node | yaml.Event) -> int:
    return node.start_mark.line + 1 if node.start_mark else 0


def _yaml_depth(text: str, field: str, pre: str) -> None:
    """Pass 1 on the event stream (iterative, no recursion): bound the nesting."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise InputError(
                    field, f"{pre}nested deeper than {MAX_DEPTH} levels (line {_line(event)})"
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _children(node: Node) -> Iterator[Node]:
    if isinstance(node, SequenceNode):
        yield from node.value
    elif isinstance(node, MappingNode):
        for k, v in node.value:
            yield k
            yield v


def _check_graph(root: Node, field: str, pre: str) -> None:
    """Pass 3 on the node graph: size and depth as if aliases were expanded (counted
    through a memo, never built), recursive aliases and duplicate keys refused."""
    size: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth)
    active: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]  # iterative post-order
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            kids = [size[id(c)] for c in _children(node)]
            total = 1 + sum(n for n, _ in kids)
            depth = 1 + max((d for _, d in kids), default=0)
            if total > MAX_NODES:
                raise InputError(
                    field,
                    f"{pre}expands to over {MAX_NODES} values (YAML aliases, line {_line(node)})",
                )
            if depth > MAX_DEPTH + 1:
                raise InputError(
                    field,
                    f"{pre}nested deeper than {MAX_DEPTH} levels (YAML aliases, "
                    f"line {_line(node)})",
                )
            size[key] = (total, depth)
            continue
        if key in size:
            continue
        if key in active:
            raise InputError(field, f"{pre}the YAML alias at line {_line(node)} refers to itself")
        active.add(key)
        if isinstance(node, MappingNode):
            _duplicate_keys(node, field, pre)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in size)


def _duplicate_keys(node: MappingNode, field: str, pre: str) -> None:
    seen: set[tuple[str, str]] = set()
    for k, _ in node.value:
        if not isinstance(k, ScalarNode) or k.tag == MERGE_TAG:
            continue
        ident = (k.tag, k.value)
        if ident in seen:
            raise InputError(field, f"{pre}duplicate key {show(k.value)} at line {_line(k)}")
        seen.add(ident)


def parse_yaml(text: str, field: str, where: str = "") -> Any:
    """One YAML document, safely: bounded depth and alias expansion, no duplicate keys,
    only plain data types (safe tags)."""
    pre = where_prefix(where)
    try:
        _yaml_depth(text, field, pre)
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_graph(node, field, pre)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        # Where the construct that broke began (an unclosed `[`), else where it broke.
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(field, f"{pre}invalid YAML{at}: {problem}") from None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. an int of 5000 digits
        raise InputError(field, f"{pre}invalid YAML value: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise InputError(field, f"{pre}nested deeper than {MAX_DEPTH} levels") from None
    check_data(data, field, where)
    return data
