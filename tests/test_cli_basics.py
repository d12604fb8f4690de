"""The CLI skeleton: version, help listing every verb, error mapping."""

from __future__ import annotations

import pytest

from editable_deepsc import __version__
from editable_deepsc.cli import VERBS, main
from editable_deepsc.channel.config import ChannelConfig
from editable_deepsc.errors import BadInput


def test_version(capsys):
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_help_lists_every_verb_with_one_line(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for verb, (_, helptext) in VERBS.items():
        assert verb in out
        assert helptext.split(".")[0][:30] in out


def test_every_verb_imports_and_has_help(capsys):
    for verb in VERBS:
        assert main([verb, "--help"]) == 0, verb
        assert "Usage" in capsys.readouterr().out


def test_unknown_verb_is_a_usage_error(capsys):
    assert main(["frobnicate"]) == 2


def test_channel_config_validates():
    assert ChannelConfig("AWGN", 6).name == "awgn"
    with pytest.raises(BadInput):
        ChannelConfig("rician", 6)
    with pytest.raises(BadInput):
        ChannelConfig("awgn", 60)
