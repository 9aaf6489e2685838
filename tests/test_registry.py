"""The small name -> object registry behind `egoforge list`."""

import pytest

from egoforge.registry import Registry


def test_register_get_and_idempotent_reregistration():
    reg = Registry("widget")

    @reg.register("a")
    def widget_a():
        """Makes A."""

    reg.add("a", widget_a)  # same object again: fine (modules can be imported twice)
    assert reg.get("a") is widget_a and reg.names() == ["a"] and reg.entries["a"].doc == "Makes A."
    with pytest.raises(ValueError, match="already registered"):
        reg.add("a", lambda: None)
    with pytest.raises(KeyError, match="registered: a"):
        reg.get("b")
