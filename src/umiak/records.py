"""Plain record classes, as `@dataclass` makes them, without the dataclasses module.

Why: `import dataclasses` imports inspect (and with it dis, opcode, ast, tokenize,
linecache...): ~10 ms of every `umiak run`, for the handful of classes on the start
path (RunOptions, Vma, Credentials, Stat, the ELF headers). `record` covers what they
use: annotated fields with or without defaults, `field(default_factory=...)`, an
`__init__` taking them in order, `__repr__` and `__eq__` over them (and, as dataclass
with eq, no `__hash__`). `replace` and `asdict` stand in for dataclasses' own.
"""

from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")


class _Factory:
    __slots__ = ("make",)

    def __init__(self, make):
        self.make = make


def field(*, default_factory: Any) -> Any:
    """A field whose default is made fresh for each instance (a list, a dict)."""
    return _Factory(default_factory)


@dataclass_transform(field_specifiers=(field,))
def record(cls: type[T]) -> type[T]:
    """Give cls __init__, __repr__ and __eq__ over its annotated fields (see the module)."""
    names = [n for n in cls.__dict__.get("__annotations__", {}) if not n.startswith("__")]
    ns: dict = {"_MISSING": _Factory}
    params, body = [], []
    for n in names:
        default = cls.__dict__.get(n, _Factory)
        if default is _Factory:
            if any(p.partition("=")[2] for p in params):
                raise TypeError(f"{cls.__name__}: field {n!r} without a default follows one with a default")
            params.append(n)
            body.append(f" self.{n} = {n}")
        elif isinstance(default, _Factory):
            ns[f"_f_{n}"] = default.make
            params.append(f"{n}=_MISSING")
            body.append(f" self.{n} = _f_{n}() if {n} is _MISSING else {n}")
            delattr(cls, n)
        else:
            ns[f"_d_{n}"] = default
            params.append(f"{n}=_d_{n}")
            body.append(f" self.{n} = {n}")
    fields = ", ".join(f"self.{n}" for n in names)
    src = (f"def __init__(self, {', '.join(params)}):\n" + ("\n".join(body) or " pass") + "\n"
           "def __eq__(self, other):\n"
           " if other.__class__ is not self.__class__:\n  return NotImplemented\n"
           f" return ({fields},) == ({fields.replace('self.', 'other.')},)\n")
    exec(src, ns)   # noqa: S102 - generated from the class's own field names
    init = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init   # type: ignore[misc]
    cls.__eq__ = ns["__eq__"]   # type: ignore[method-assign,assignment]
    cls.__hash__ = None   # type: ignore[assignment]   # as a dataclass with eq: mutable, unhashable
    if "__repr__" not in cls.__dict__:
        cls.__repr__ = _repr   # type: ignore[method-assign,assignment]
    cls.__record_fields__ = tuple(names)   # type: ignore[attr-defined]
    return cls


def _repr(self) -> str:
    return f"{type(self).__qualname__}({', '.join(f'{n}={getattr(self, n)!r}' for n in self.__record_fields__)})"


def replace(obj: T, **changes) -> T:
    """A new record like obj with some fields changed (dataclasses.replace)."""
    kw = {n: getattr(obj, n) for n in obj.__record_fields__}   # type: ignore[attr-defined]
    for k in changes:
        if k not in kw:
            raise TypeError(f"{type(obj).__name__} has no field {k!r}")
    kw.update(changes)
    return type(obj)(**kw)


def asdict(obj) -> dict:
    """The fields as a dict; lists and dicts copied (dataclasses.asdict, one level deep)."""
    out = {}
    for n in obj.__record_fields__:
        v = getattr(obj, n)
        out[n] = type(v)(v) if isinstance(v, (list, dict)) else v
    return out
