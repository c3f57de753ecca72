"""YAML that refuses a key given twice in one mapping.

PyYAML's ``safe_load`` keeps the last of two equal keys and says nothing, so a recipe with
``lr: 0.01`` on line 3 and ``lr: 0.1`` on line 9 of the same section silently trains at 0.1.
``UniqueKeyLoader`` is ``SafeLoader`` with one check added: before a document is built, every
mapping node is walked and two keys that construct to the same value (``lr`` and ``"lr"`` too)
raise ``DuplicateKey`` with the dotted path of the key and both line numbers. Keys brought in by
a ``<<`` merge may still be overridden, as YAML intends: only keys written in the mapping count.
"""

from __future__ import annotations

import yaml


class DuplicateKey(yaml.constructor.ConstructorError):
    """A mapping holds the same key twice. ``key`` is dotted (``train.lr``); lines are 1-based."""

    def __init__(self, key: str, first_line: int, second_line: int, mark):
        super().__init__(None, None, f"duplicate key {key!r}", mark)
        self.key, self.first_line, self.second_line = key, first_line, second_line


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that raises ``DuplicateKey`` instead of keeping the last of two equal keys."""

    def construct_document(self, node):
        self._check_unique(node, "")
        return super().construct_document(node)

    def _check_unique(self, node, path: str) -> None:
        if isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._check_unique(item, f"{path}[{index}]")
        if not isinstance(node, yaml.MappingNode):
            return
        seen: dict = {}
        for key_node, value_node in node.value:
            key = self._key_of(key_node)
            dotted = f"{path}.{key}" if path else str(key)
            if key is not None:
                if key in seen:
                    raise DuplicateKey(dotted, seen[key], key_node.start_mark.line + 1, key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
            self._check_unique(value_node, dotted)

    def _key_of(self, key_node):
        """The key's value for comparison, or None for a merge (``<<``) or a key that is not a plain scalar."""
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            return None
        value = self.construct_object(key_node)
        try:
            hash(value)
        except TypeError:
            return None
        return value


def load(text: str):
    """``yaml.safe_load`` with duplicate keys refused (``DuplicateKey``, a ``yaml.YAMLError``)."""
    return yaml.load(text, Loader=UniqueKeyLoader)
