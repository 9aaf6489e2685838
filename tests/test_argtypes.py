"""Range-checked argparse types: out-of-range numbers are refused by the parser, with the option named."""

from __future__ import annotations

import argparse

import pytest

from egoforge.tools.argtypes import (
    check_order,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
    top_p,
)


def _parser(kind):
    parser = argparse.ArgumentParser(prog="t", exit_on_error=False)
    parser.add_argument("--x", type=kind)
    return parser


@pytest.mark.parametrize(("kind", "good", "bad"), [
    (positive_int, ["1", "16"], ["0", "-2", "1.5", "x"]),
    (non_negative_int, ["0", "3"], ["-1", "nan"]),
    (positive_float, ["0.5", "2", "1e-3"], ["0", "-1", "nan", "inf", "x"]),
    (probability, ["0", "0.3", "1"], ["-0.1", "1.01", "nan"]),
    (top_p, ["0.8", "1"], ["0", "1.5"]),
])
def test_ranges(kind, good, bad):
    parser = _parser(kind)
    for text in good:
        assert parser.parse_args(["--x", text]).x == kind(text)
    for text in bad:
        with pytest.raises(argparse.ArgumentError, match="argument --x"):
            parser.parse_args(["--x", text])


def test_message_names_the_bound(capsys):
    parser = argparse.ArgumentParser(prog="t")
    parser.add_argument("--k", type=positive_int)
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["--k", "0"])
    assert info.value.code == 2
    assert "argument --k: must be an integer >= 1, got 0" in capsys.readouterr().err


def test_check_order(capsys):
    parser = argparse.ArgumentParser(prog="t")
    args = argparse.Namespace(min_frames=16, max_frames=4, min_pixels=None, max_pixels=10)
    check_order(parser, args, ("min_pixels", "max_pixels"))  # unset: not compared
    with pytest.raises(SystemExit):
        check_order(parser, args, ("min_frames", "max_frames"))
    assert "--min-frames 16 is larger than --max-frames 4" in capsys.readouterr().err
