"""One ``encode`` and one ``decode`` for every control message (JSON with a type tag).

Control traffic is small and rare next to data, so JSON is the right trade: readable in a
packet capture, versioned by ``PROTOCOL_VERSION``, and one codec for all four directions.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import types
import typing
from typing import TYPE_CHECKING, Any, TypeVar

from .._errors import ProtocolError
from ._index import WHERE

__all__ = ["PROTOCOL_VERSION", "control_message", "decode", "encode"]

#: Bumped on any incompatible change; sent in every hello (daemon and node registration).
PROTOCOL_VERSION = 1

_REGISTRY: dict[str, type] = {}
_HINTS: dict[type, dict[str, Any]] = {}
T = TypeVar("T")

if TYPE_CHECKING:
    # Tells the type checker that a decorated class is a frozen dataclass (its __init__ takes the
    # fields); at run time the decorator below does it, so typing_extensions is not needed then.
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_: Any) -> Any:
        return lambda decorator: decorator


@dataclass_transform(frozen_default=True)
def control_message(cls: type[T]) -> type[T]:
    """Class decorator: make ``cls`` a frozen, slotted dataclass known to the codec."""
    data_cls = dataclasses.dataclass(frozen=True, slots=True)(cls)
    _REGISTRY[cls.__name__] = data_cls
    return data_cls


def encode(msg: Any) -> bytes:
    """Encode a registered message as ``{"t": name, ...fields}`` JSON bytes."""
    body = _to_plain(msg)
    body["t"] = type(msg).__name__
    return json.dumps(body, separators=(",", ":")).encode()


def decode(raw: bytes) -> Any:
    """Decode bytes made by :func:`encode`.

    Raises:
        ProtocolError: unknown type, missing fields or invalid JSON; nothing else, whatever
            the bytes (a peer may send anything: 4,300-digit integers raise ValueError in
            json, nesting deeper than the stack RecursionError).
    """
    try:
        body = json.loads(raw)
        name = body.pop("t")
        cls = _REGISTRY.get(name) or _load(name)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise ProtocolError(f"malformed control message: {exc!r}"[:500]) from exc
    try:
        return _from_plain(cls, body)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"malformed {name} message: {exc}"[:500]) from exc


def _load(name: str) -> type:
    """The class of type tag ``name``, importing its direction module (see ``_index``) first.

    Raises:
        KeyError: not a message type (only the modules of the index are ever imported).
    """
    module = WHERE[name]  # KeyError for anything else: a peer cannot make this import at will
    importlib.import_module(module, __package__)
    return _REGISTRY[name]


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    return value


def _from_plain(cls: type, body: dict[str, Any]) -> Any:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    kwargs = {k: _convert(hints.get(k), v) for k, v in body.items() if k in hints}
    return cls(**kwargs)


_SCALARS = {str: (str,), int: (int,), float: (int, float), bool: (bool,)}


def _convert(hint: Any, value: Any) -> Any:
    """Rebuild nested records and check every value against its field's type.

    Raises:
        TypeError: a value of the wrong type (the caller makes it a ProtocolError), so a
            well-formed JSON message with nonsense in it never reaches a handler.
    """
    if hint is None:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value)
            except TypeError as exc:
                errors.append(str(exc))
        raise TypeError("; ".join(errors) or f"unexpected {type(value).__name__}")
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise TypeError(f"expected an object for {hint.__name__}, got {type(value).__name__}")
        return _from_plain(hint, value)
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        return [_convert(args[0], v) for v in value] if args else value
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {type(value).__name__}")
        return {k: _convert(args[1], v) for k, v in value.items()} if len(args) == 2 else value
    accepted = _SCALARS.get(hint)
    if accepted is not None and (not isinstance(value, accepted) or (hint is not bool and isinstance(value, bool))):
        raise TypeError(f"expected {hint.__name__}, got {type(value).__name__}")
    return value
