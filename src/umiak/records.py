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
    """Give cls __init__, __repr__ and __eq__ over its annotated fields (see the module).

    Only __init__ is generated code, as dataclasses makes it (see below)."""
    names = tuple(n for n in cls.__dict__.get("__annotations__", {}) if not n.startswith("__"))
    defaults: dict = {}       # name -> default value
    factories: dict = {}      # name -> default_factory
    for n in names:
        default = cls.__dict__.get(n, _Factory)
        if default is _Factory:
            if defaults or factories:
                raise TypeError(f"{cls.__name__}: field {n!r} without a default follows one with a default")
        elif isinstance(default, _Factory):
            factories[n] = default.make
            delattr(cls, n)
        else:
            defaults[n] = default
    qualname = cls.__qualname__
    params, body = [], []
    ns: dict = {"_MISSING": _Factory}
    for n in names:
        if n in factories:
            ns[f"_f_{n}"] = factories[n]
            params.append(f"{n}=_MISSING")
            body.append(f" self.{n} = _f_{n}() if {n} is _MISSING else {n}")
        else:
            if n in defaults:
                ns[f"_d_{n}"] = defaults[n]
            params.append(f"{n}=_d_{n}" if n in defaults else n)
            body.append(f" self.{n} = {n}")
    # __init__ is generated (a generic one over the field list made each Vma 4x slower to
    # create); __eq__ and __repr__ are generic (compiling them too cost start-up ~1 ms per
    # 30 fields, for methods that are seldom called).
    exec(f"def __init__(self, {', '.join(params)}):\n" + ("\n".join(body) or " pass") + "\n", ns)   # noqa: S102
    __init__ = ns["__init__"]

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        # As the tuples dataclasses compares: identical values are equal (a NaN field too).
        return all(a is b or a == b for a, b in ((getattr(self, n), getattr(other, n)) for n in names))

    __init__.__qualname__ = f"{qualname}.__init__"
    __eq__.__qualname__ = f"{qualname}.__eq__"
    c: Any = cls   # untyped: mypy versions differ on what assigning a method is an error of
    c.__init__ = __init__
    c.__eq__ = __eq__
    c.__hash__ = None   # as a dataclass with eq: mutable, unhashable
    if "__repr__" not in cls.__dict__:
        c.__repr__ = _repr
    c.__record_fields__ = names
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
