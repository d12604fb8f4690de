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


def test_write_result_writes_json_atomically_and_prints_only_when_asked(tmp_path, capsys):
    import json
    import stat

    from editable_deepsc.cli.options import write_result

    out = tmp_path / "sub" / "r.json"
    assert write_result({"a": 1}, str(out), as_json=False) is False
    assert json.loads(out.read_text()) == {"a": 1}
    assert capsys.readouterr().out == ""
    assert [p.name for p in out.parent.iterdir()] == ["r.json"]  # no temporary file left
    assert stat.S_IMODE(out.stat().st_mode) & 0o044 == 0o044  # readable by others (0644 under umask 022)
    assert write_result({"b": 2}, None, as_json=True) is True
    assert json.loads(capsys.readouterr().out) == {"b": 2}
