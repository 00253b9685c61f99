"""Stable names for what an observation depends on, so a paid cell is reused, never re-paid.

An observation store keys each cell by four strings (:class:`CellKey`):

- ``agent``: :func:`callable_fingerprint` of the agent class or factory;
- ``eval_fn``: :func:`callable_fingerprint` of ``eval_fn``;
- ``combo``: :func:`combo_key`: ``node=model`` for each node (a model object
  adds a hash of its readable content, so two temperatures stay apart);
- ``datapoint``: :func:`datapoint_keys`: a hash of the item's content
  (``#k`` marks the k-th repeat of an identical item).

Nothing else goes into the key: not the method, the seed, the other models or
the rest of the dataset, so every method, seed and dataset order reuses every
cell already paid for.

A callable's fingerprint is ``module.qualname@hash``, the hash taken over its
source (its bytecode's constants and names where there is no source), the
simple constant values it closes over or takes as defaults, and what it reads
from its own module: constants, and the functions and classes defined there
that it uses (followed recursively). For a class: the methods and constant
attributes of the class and of its bases defined in the same module; for a
callable object: its class and its constant attributes. Constants are values
of immutable types (str, bytes, numbers, bool, None, and tuples/frozensets of
them); mutable objects (a client, a counter dict) are state, not code, and are
left out. Decorators made with ``functools.wraps`` are unwrapped. The hash is
the same in every process. Code in *other* modules (an installed framework,
your own package's other files), files it reads and remote models are not
followed: when they change in a way that matters, pass ``agent_version=`` /
``eval_fn_version=`` to :class:`~agentopt.selectors.selector.ModelSelector`,
which replaces the hash with your own version string.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import textwrap
import types
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from agentopt.selectors.run.inputs import model_label

__all__ = [
    "CellKey",
    "Scope",
    "callable_fingerprint",
    "canonical",
    "combo_key",
    "datapoint_keys",
]


class Scope(NamedTuple):
    """The part of a cell's key shared by a whole selection: agent and eval_fn."""

    agent: str
    eval_fn: str


class CellKey(NamedTuple):
    """What one observation is the measurement of."""

    agent: str
    eval_fn: str
    combo: str
    datapoint: str


_SKIP = object()
_IMMUTABLE = (str, bytes, int, float, complex, bool, type(None))
# class attributes that are bookkeeping, not behaviour
_CLASS_NOISE = frozenset(
    {
        "__module__",
        "__qualname__",
        "__doc__",
        "__dict__",
        "__weakref__",
        "__annotations__",
        "__firstlineno__",
        "__static_attributes__",
        "__parameters__",
        "__orig_bases__",
        "__abstractmethods__",
        "_abc_impl",
    }
)


def canonical(obj: Any) -> Any:
    """A JSON-able, deterministic stand-in for ``obj``: its content where it can be
    read (mappings, sequences, dataclasses, pydantic models, ``__dict__``/slots),
    else its repr unless that holds a memory address, else its type."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
    try:
        if hasattr(obj, "model_dump"):
            return {"__type__": kind, **canonical(obj.model_dump())}
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
            return {"__type__": kind, **canonical(fields)}
        if not callable(obj):
            slots = [a for c in type(obj).__mro__ for a in getattr(c, "__slots__", ())]
            state = dict(getattr(obj, "__dict__", {}))
            state.update({a: getattr(obj, a) for a in slots if hasattr(obj, a)})
            if state:
                return {"__type__": kind, **canonical(state)}
        text = repr(obj)
    except Exception:  # an object whose content cannot be read is known by its type
        return f"<{kind}>"
    return f"<{kind}>" if " at 0x" in text else text


def _digest(payload: Any, n: int = 16) -> str:
    text = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:n]


# --------------------------------------------------------------------------- callables
def _constant(value: Any) -> Any:
    """``value`` as JSON-able data if it is an immutable constant, else ``_SKIP``."""
    if isinstance(value, _IMMUTABLE):
        return value if isinstance(value, (str, int, bool, type(None))) else repr(value)
    if isinstance(value, tuple):
        items = [_constant(v) for v in value]
        return _SKIP if any(i is _SKIP for i in items) else items
    if isinstance(value, frozenset):
        items = [_constant(v) for v in value]
        if any(i is _SKIP for i in items):
            return _SKIP
        return sorted(items, key=repr)
    return _SKIP


def _constants(items: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in items.items():
        c = _constant(v)
        if c is not _SKIP:
            out[str(k)] = c
    return dict(sorted(out.items()))


def _code_parts(code: types.CodeType) -> list[Any]:
    """The names and constants of ``code`` (nested code objects included), in a form
    that is the same in every process (no addresses, frozensets sorted)."""
    consts: list[Any] = []
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            consts.append(_code_parts(c))
        else:
            k = _constant(c)
            consts.append(repr(c) if k is _SKIP else k)
    return [code.co_name, list(code.co_names), consts]


def _qualname(obj: Any) -> str:
    mod = getattr(obj, "__module__", None) or type(obj).__module__
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{mod}.{name}"


def _all_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _all_names(c)
    return names


def _same_module_parts(value: Any, module: str, seen: set[int]) -> Any:
    """A function or class defined in ``module`` (the user's own code), else _SKIP."""
    if getattr(value, "__module__", None) != module:
        return _SKIP
    if isinstance(value, types.FunctionType):
        return _function_parts(value, seen)
    if isinstance(value, type):
        return _class_parts(value, seen)
    return _SKIP


def _function_parts(fn: types.FunctionType, seen: set[int]) -> Any:
    fn = inspect.unwrap(fn)
    if id(fn) in seen:  # recursion, or a helper already included
        return _qualname(fn)
    seen.add(id(fn))
    code = fn.__code__
    try:
        source: str | None = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        source = None
    parts: dict[str, Any] = {"name": _qualname(fn)}
    if source is not None:
        parts["source"] = source
    if source is None or fn.__name__ == "<lambda>":  # a lambda's source is its whole line
        parts["code"] = _code_parts(code)
    if source is None:
        parts["bytecode"] = code.co_code.hex()
    cells = fn.__closure__ or ()
    closure = {}
    for name, cell in zip(code.co_freevars, cells, strict=False):
        try:
            closure[name] = cell.cell_contents
        except ValueError:  # an empty cell
            continue
    parts["closure"] = _constants(closure)
    parts["defaults"] = _constant(tuple(fn.__defaults__ or ()))
    parts["kwdefaults"] = _constants(fn.__kwdefaults__ or {})
    # what it reads from its own module: constants, and the helpers it calls
    module = fn.__module__
    used: dict[str, Any] = {}
    for name in sorted(_all_names(code)):
        if name not in fn.__globals__:
            continue
        value = fn.__globals__[name]
        part = _constant(value)
        if part is _SKIP:
            part = _same_module_parts(value, module, seen)
        if part is not _SKIP:
            used[name] = part
    for name, value in sorted(closure.items()):
        part = _same_module_parts(value, module, seen)
        if part is not _SKIP:
            used[f"closure:{name}"] = part
    parts["uses"] = used
    return parts


def _class_parts(cls: type, seen: set[int]) -> Any:
    """Methods and constant attributes of ``cls`` and its bases from the same module."""
    if id(cls) in seen:
        return _qualname(cls)
    seen.add(id(cls))
    out: list[Any] = []
    for c in cls.__mro__:
        if c is object or (c is not cls and c.__module__ != cls.__module__):
            continue
        members: dict[str, Any] = {}
        for name, value in vars(c).items():
            if name in _CLASS_NOISE:
                continue
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, property):
                members[name] = [
                    _function_parts(f, seen)
                    for f in (value.fget, value.fset)
                    if isinstance(f, types.FunctionType)
                ]
            elif isinstance(value, types.FunctionType):
                members[name] = _function_parts(value, seen)
            else:
                k = _constant(value)
                if k is not _SKIP:
                    members[name] = k
        out.append([_qualname(c), dict(sorted(members.items()))])
    return out


def _callable_parts(fn: Any, seen: set[int]) -> Any:
    if isinstance(fn, functools.partial):
        return {
            "partial": _callable_parts(fn.func, seen),
            "args": [_constant(a) if _constant(a) is not _SKIP else _qualname(a) for a in fn.args],
            "keywords": _constants(fn.keywords),
        }
    if isinstance(fn, types.MethodType):
        return {
            "method": _callable_parts(fn.__func__, seen),
            "self": _callable_parts(fn.__self__, seen),
        }
    if isinstance(fn, types.FunctionType):
        return _function_parts(fn, seen)
    if isinstance(fn, type):
        return _class_parts(fn, seen)
    if isinstance(fn, (types.BuiltinFunctionType, types.BuiltinMethodType)):
        return _qualname(fn)
    state = getattr(fn, "__dict__", None)
    return {
        "class": _class_parts(type(fn), seen),
        "state": _constants(state) if isinstance(state, Mapping) else {},
    }


def callable_fingerprint(fn: Any, version: str | None = None) -> str:
    """``module.qualname@hash`` of an agent or ``eval_fn`` (see the module docstring);
    with ``version``, ``module.qualname@v:version`` (you decide when it changes)."""
    target = fn.func if isinstance(fn, functools.partial) else fn
    if not isinstance(target, type) and not inspect.isroutine(target):
        target = type(target)
    name = _qualname(inspect.unwrap(target) if inspect.isfunction(target) else target)
    if version is not None:
        return f"{name}@v:{version}"
    return f"{name}@{_digest(_callable_parts(fn, set()))}"


# --------------------------------------------------------------------------- cells
def datapoint_keys(dataset: Sequence[Any]) -> list[str]:
    """One key per item: a hash of its content; the k-th repeat of an identical item
    gets ``#k``, so duplicates stay separate members of the population."""
    seen: dict[str, int] = {}
    out = []
    for item in dataset:
        h = _digest(canonical(item))
        k = seen.get(h, 0)
        seen[h] = k + 1
        out.append(h if k == 0 else f"{h}#{k}")
    return out


def combo_key(combo: Mapping[str, Any], labels: Mapping[str, str]) -> str:
    """``node=model + node=model``; a model given as an object is its label plus a hash
    of its readable content (two objects with one model name stay apart)."""
    parts = []
    for node, model in combo.items():
        if isinstance(model, str):
            parts.append(f"{node}={labels[node]}")  # "m#2" when the list repeats "m"
        else:
            parts.append(f"{node}={model_label(model)}@{_digest(canonical(model), 10)}")
    return " + ".join(parts)
