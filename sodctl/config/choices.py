"""Enumerated config choices that OmegaConf 2.3 and 2.4 both enforce.

OmegaConf 2.4 enforces ``Literal[...]`` annotations, but 2.3 (the version verl's
hydra-core 1.3.8 pins) rejects them outright ("Unexpected type annotation"), and
validates an enum field by member *name*. So every choice in the schema is a
``StrEnum`` whose member names equal their values (VERL.md §6):

- an assignment of any other string fails on both versions (the loader turns that
  into one line naming the key and the choices);
- a member *is* its string: ``Size("0.6b") == "0.6b"``, it hashes like the string,
  prints as the string in f-strings, ``str()`` and ``json.dumps``;
- ``OmegaConf.to_yaml`` and ``to_container(enum_to_str=True)`` write the value.

``resolved_dict`` converts members to plain strings, so nothing downstream
(YAML dumps, W&B, verl's config) sees an enum type.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Iterable

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - Python 3.10

    class StrEnum(str, enum.Enum):
        """``enum.StrEnum`` of Python 3.11: members print as their values."""

        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, spec: str) -> str:
            return str.__format__(str(self.value), spec)


def choice_enum(name: str, values: Iterable[str], *, module: str) -> type[StrEnum]:
    """A ``StrEnum`` called ``name`` with one member per value, each named as its value.

    Assign the result to a module-level variable of the same ``name`` in ``module``
    (pass ``__name__``) so that members pickle.
    """
    values = tuple(values)
    if len(set(values)) != len(values):
        raise ValueError(f"choice {name}: values repeat: {values}")
    cls = StrEnum(name, {v: v for v in values}, module=module)  # type: ignore[call-overload]
    cls.__qualname__ = name
    return cls


def choices_of(cls: type[enum.Enum]) -> tuple[str, ...]:
    """The values of an enum choice, in order."""
    return tuple(str(m.value) for m in cls)
