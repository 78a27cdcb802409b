"""umiak.records: the plain record classes that stand in for dataclasses on the start path."""

import pytest

from umiak.records import asdict, field, record, replace


@record
class Point:
    """A documented record."""
    x: int
    y: int = 2
    tags: list = field(default_factory=list)

    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)


def test_init_defaults_and_fresh_factories():
    a, b = Point(1), Point(1, 3, ["t"])
    assert (a.x, a.y, a.tags, b.y, b.tags) == (1, 2, [], 3, ["t"])
    assert Point(0).tags is not Point(0).tags          # a new list each time
    assert Point(x=5, y=-1).norm1() == 6 and Point.__doc__ == "A documented record."
    with pytest.raises(TypeError):
        Point()                                        # x has no default
    with pytest.raises(TypeError):
        Point(1, 2, [], 4)


def test_eq_repr_and_unhashable_as_a_dataclass():
    assert Point(1) == Point(1) and Point(1) != Point(1, 3) and Point(1) != (1, 2, [])
    assert repr(Point(1, tags=["a"])) == "Point(x=1, y=2, tags=['a'])"
    with pytest.raises(TypeError):
        hash(Point(1))


def test_replace_and_asdict():
    a = Point(1, tags=["a"])
    b = replace(a, y=9)
    assert (b.x, b.y, b.tags) == (1, 9, ["a"]) and a.y == 2 and b.tags is a.tags   # shallow, as dataclasses
    d = asdict(a)
    assert d == {"x": 1, "y": 2, "tags": ["a"]} and d["tags"] is not a.tags
    with pytest.raises(TypeError):
        replace(a, z=1)


def test_a_field_without_default_after_one_with_is_refused():
    class Bad:
        x: int = 1
        y: int
    with pytest.raises(TypeError):
        record(Bad)
