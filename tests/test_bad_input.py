"""The bad-input and abuse sweep of the CLI (issue: hardening), one case per finding.

Each case exits 2 with one ``error:`` line and writes nothing. The decompression-bomb cases run
the real ``edsc`` in a subprocess and measure its peak resident memory (``os.wait4``).
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from types import SimpleNamespace

import click
import numpy as np
import pytest
import torch
from PIL import Image

from editable_deepsc.cli import cli, main
from editable_deepsc.errors import BadInput, ImageError, NoFaceFound
from editable_deepsc.imaging.io import load_image, save_image

pytestmark = pytest.mark.usefixtures("one_torch_thread_module")

ROOT = Path(__file__).resolve().parents[1]
GB = 1 << 30
RUN_CLI = "import sys; from editable_deepsc.cli import main; sys.exit(main(sys.argv[1:]))"


# ---------------------------------------------------------------------- helpers
def bomb_png(path: Path, width: int, height: int) -> Path:
    """A 1-bit greyscale PNG of ``width`` x ``height`` zeros, written row by row (a few tens of KB)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\0" * (1 + (width + 7) // 8)
    z = zlib.compressobj(9)
    parts = [z.compress(row * 500) for _ in range(height // 500)]
    parts += [z.compress(row * (height % 500)), z.flush()]
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts))
                     + chunk(b"IEND", b""))
    return path


def run_edsc(args: list[str], tmp_path: Path) -> tuple[int, str, str, int]:
    """Run ``edsc ARGS`` in a fresh process → (exit code, stdout, stderr, peak RSS in bytes)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out.open("wb") as fo, err.open("wb") as fe:
        p = subprocess.Popen([sys.executable, "-c", RUN_CLI, *args], stdout=fo, stderr=fe,
                             stdin=subprocess.DEVNULL, env=env, cwd=tmp_path)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, out.read_text(), err.read_text(), usage.ru_maxrss * 1024  # ru_maxrss: KiB on Linux


def one_error_line(err: str, match: str = "") -> bool:
    lines = err.strip().splitlines()
    return len(lines) == 1 and lines[0].startswith("error:") and match in lines[0]


@pytest.fixture(scope="module")
def face64(tmp_path_factory) -> Path:
    from editable_deepsc.demo import sample_face

    p = tmp_path_factory.mktemp("face") / "face.png"
    save_image(sample_face(64), p)
    return p


@pytest.fixture(scope="module")
def three_faces() -> torch.Tensor:
    """A 480x480 photo with three teacher faces (160 px each) on grey, (1, 3, 480, 480)."""
    from editable_deepsc.generator import teacher
    from editable_deepsc.generator.teacher import teacher_faces

    faces = teacher_faces(teacher.test_seeds(5))
    canvas = torch.zeros(1, 3, 480, 480)
    for i, (y, x) in zip((3, 4, 2), ((40, 40), (40, 280), (280, 160))):
        canvas[..., y:y + 160, x:x + 160] = torch.nn.functional.interpolate(
            faces[i:i + 1], size=160, mode="bicubic").clamp(-1, 1)
    return canvas


# ---------------------------------------------------------------------- memory and decompression bombs
@pytest.mark.parametrize("verb, extra", [
    ("edit", ["-i", "make her smile", "--json"]), ("transmit", ["--json"]), ("invert", ["--json"]),
    ("analyze", ["--json"]), ("chat", []),
])
def test_bomb_beyond_pillows_guard_exit_2_bounded_memory(tmp_path, verb, extra):
    bomb = bomb_png(tmp_path / "bomb.png", 20_000, 20_000)
    assert bomb.stat().st_size < 100_000
    rc, out, err, rss = run_edsc([verb, str(bomb), *extra], tmp_path)
    print(f"{verb} 20000x20000 1-bit PNG: peak RSS {rss / 2**20:.0f} MiB")
    assert rc == 2 and one_error_line(err, "20000x20000"), err
    assert rss < GB


def test_bomb_under_pillows_guard_is_refused_before_decoding(tmp_path):
    bomb = bomb_png(tmp_path / "bomb.png", 12_000, 12_000)
    assert bomb.stat().st_size < 40_000
    rc, out, err, rss = run_edsc(["edit", str(bomb), "-i", "make her smile", "--json"], tmp_path)
    print(f"edit 12000x12000 1-bit PNG: peak RSS {rss / 2**20:.0f} MiB")
    assert rc == 2 and one_error_line(err, "12000x12000 px (144.0 Mpx); the limit is 16.8 Mpx (4096x4096)"), err
    assert rss < GB


def test_huge_cbr_refused_before_any_allocation(tmp_path, face64):
    rc, out, err, rss = run_edsc(["transmit", str(face64), "--method", "jpeg-ldpc", "--cbr", "1e6", "--json"], tmp_path)
    print(f"transmit --cbr 1e6: peak RSS {rss / 2**20:.0f} MiB")
    assert rc == 2 and one_error_line(err, "CBR must be in (0, 1]"), err
    assert rss < GB


def test_large_photo_is_reduced_while_decoding(tmp_path):
    from editable_deepsc.imaging.io import MAX_PIXELS, WORK_SIDE

    p = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000), (120, 90, 60)).save(p, quality=80)
    x = load_image(p)
    assert x.shape == (1, 3, 768, WORK_SIDE)  # draft (JPEG DCT scaling) + reduce, aspect kept
    assert abs(float(x[0, 0].mean()) - (120 / 127.5 - 1)) < 0.02
    assert MAX_PIXELS == 4096 * 4096


def test_every_numeric_option_of_every_verb_is_bounded():
    from editable_deepsc.cli.options import OWN_CHECKS, SNR_OPTIONS, SnrType

    def walk(group, ctx, prefix):
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            if isinstance(cmd, click.Group):
                yield from walk(cmd, ctx, prefix + [name])
                continue
            for p in cmd.params:
                if isinstance(p, click.Option) and isinstance(p.type, (click.types.IntParamType,
                                                                       click.types.FloatParamType, SnrType)):
                    yield " ".join(prefix + [name]), p

    found = list(walk(cli, click.Context(cli), []))
    assert len(found) > 60
    unbounded = [(v, p.name) for v, p in found if not isinstance(p.type, (click.types._NumberRangeBase, SnrType))
                 and p.name not in OWN_CHECKS.get(v.split()[-1], ())]
    assert unbounded == []
    snrs = [p for v, p in found if p.name in SNR_OPTIONS]
    assert len(snrs) >= 5 and all(isinstance(p.type, SnrType) for p in snrs)


@pytest.mark.parametrize("argv, match", [
    (["edit", "x.png", "-i", "smile", "--strength", "1e9"], "'--strength'"),
    (["edit", "x.png", "-i", "smile", "--strength", "nan"], "not a finite number"),
    (["invert", "x.png", "--steps", "1000000000"], "'--steps'"),
    (["invert", "x.png", "--steps", "-1"], "'--steps'"),
    (["eval", "--n", "1000000000"], "'--n'"),
    (["bench", "codec", "--n", "0"], "'--n'"),
    (["bench", "ldpc", "--k", "10000000"], "'--k'"),
    (["train", "codec", "--k", "0"], "'--k'"),
    (["chat", "x.png", "--refresh-every", "0"], "'--refresh-every'"),
    (["transmit", "x.png", "--cbr", "2"], "CBR must be in (0, 1]"),
    (["transmit", "x.png", "--snr", "inf"], "SNR"),
    (["serve", "--max-sessions", "0"], "'--max-sessions'"),
])
def test_out_of_range_numbers_exit_2_one_line(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (64, 64)).save(tmp_path / "x.png")
    assert main(argv) == 2
    assert one_error_line(capsys.readouterr().err, match)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]


# ---------------------------------------------------------------------- outputs checked before any work
def _no_models(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("models were loaded before the output path was checked")

    monkeypatch.setattr("editable_deepsc.cli.edit.build_system", refuse)
    monkeypatch.setattr(importlib.import_module("editable_deepsc.inversion.files"), "load_generator", refuse)


@pytest.mark.parametrize("make_args", [
    lambda d: ["edit", "FACE", "-i", "smile", "--out", str(d / "a_file" / "o.png")],
    lambda d: ["edit", "FACE", "-i", "smile", "--out", "/proc/o.png"],
    lambda d: ["edit", "FACE", "-i", "smile", "--out", str(d / "a_dir.png")],
    lambda d: ["edit", "FACE", "-i", "smile", "--save-steps", str(d / "a_file")],
    lambda d: ["invert", "FACE", "--latent-out", str(d / "a_file" / "w.safetensors")],
    lambda d: ["invert", "FACE", "--out", "/proc/o.png"],
    lambda d: ["transmit", "FACE", "--out", str(d / "a_file" / "o.png")],
    lambda d: ["chat", "FACE", "--out-dir", str(d / "a_file")],
    lambda d: ["eval", "--out", str(d / "a_file")],
])
def test_unwritable_outputs_refused_before_any_work(make_args, face64, tmp_path, capsys, monkeypatch):
    _no_models(monkeypatch)
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_dir.png").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [str(face64) if a == "FACE" else a for a in make_args(tmp_path)]
    assert main(argv) == 2
    assert one_error_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_written_images_are_0644_atomic_and_replace(tmp_path):
    old = os.umask(0o022)
    try:
        p = save_image(torch.zeros(1, 3, 8, 8), tmp_path / "sub" / "o.png")
        assert stat.S_IMODE(p.stat().st_mode) == 0o644
        save_image(torch.ones(1, 3, 8, 8), p)  # an existing output is replaced (documented in --help)
        assert np.asarray(Image.open(p)).min() == 255
        assert sorted(x.name for x in p.parent.iterdir()) == ["o.png"]  # no temporary file left
        from editable_deepsc.zoo.registry import save_state_dict

        w = tmp_path / "w.safetensors"
        save_state_dict({"w": torch.zeros(2)}, w)
        assert stat.S_IMODE(w.stat().st_mode) == 0o644
    finally:
        os.umask(old)


def test_help_says_outputs_are_checked_and_replaced(capsys):
    for verb in ("edit", "invert", "transmit"):
        assert main([verb, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "checked before any work; written atomically; an existing file is replaced" in text, verb


# ---------------------------------------------------------------------- faces
def _checked_system(monkeypatch):
    """``build_system`` → a stand-in that runs the real face check and fails if anything else runs."""
    from editable_deepsc.inversion.prepare import prepare_image

    def edit(*a, **k):
        raise AssertionError("a faceless image reached the editor")

    stub = SimpleNamespace(prepare_input=lambda img, face=None: prepare_image(img, 64, face=face, check_face=True),
                           edit=edit, session=edit)
    monkeypatch.setattr("editable_deepsc.cli.edit.build_system", lambda *a, **k: stub)
    monkeypatch.setattr("editable_deepsc.cli.chat.build_system", lambda *a, **k: stub)


@pytest.mark.parametrize("kind", ["flat", "noise"])
@pytest.mark.parametrize("verb", ["edit", "chat", "analyze"])
def test_faceless_64px_images_are_refused(kind, verb, tmp_path, capsys, monkeypatch):
    _checked_system(monkeypatch)
    rng = np.random.default_rng(0)
    arr = np.full((64, 64, 3), 128, np.uint8) if kind == "flat" else rng.integers(0, 256, (64, 64, 3), np.uint8)
    p = tmp_path / f"{kind}.png"
    Image.fromarray(arr).save(p)
    argv = {"edit": ["edit", str(p), "-i", "smile", "--out", str(tmp_path / "o.png")],
            "chat": ["chat", str(p), "--out-dir", str(tmp_path / "chat")],
            "analyze": ["analyze", str(p), "--json"]}[verb]
    assert main(argv) == 2
    assert one_error_line(capsys.readouterr().err, "no face found in the 64x64 image")
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "chat").exists()


def test_generator_faces_pass_the_face_check():
    from editable_deepsc.generator import teacher
    from editable_deepsc.generator.teacher import teacher_faces
    from editable_deepsc.guidance.faces.align import FaceAligner
    from editable_deepsc.inversion.prepare import prepare_image

    aligner = FaceAligner()
    faces = teacher_faces(teacher.test_seeds(20))
    ok = 0
    for i in range(len(faces)):
        try:
            prepare_image(faces[i:i + 1], 64, check_face=True, aligner=aligner)
            ok += 1
        except NoFaceFound:
            pass
    assert ok >= 19  # 198 of 200 held-out teacher faces pass (SMALL_FACE_THRESHOLD)


def test_exif_rotation_is_applied(tmp_path, three_faces):
    from editable_deepsc.imaging.io import to_pil

    img = to_pil(three_faces)
    rotated = img.transpose(Image.Transpose.ROTATE_90)  # stored sideways ...
    exif = Image.Exif()
    exif[0x0112] = 6  # ... and tagged "rotate 90° clockwise to display"
    p = tmp_path / "sideways.jpg"
    rotated.save(p, exif=exif, quality=95)
    x = load_image(p)
    upright = np.asarray(img, np.float32)
    assert np.abs((x[0].permute(1, 2, 0).numpy() + 1) * 127.5 - upright).mean() < 6
    from editable_deepsc.guidance.faces.report import analyze_file

    r = analyze_file(p)  # today: "no face found" (the faces lie on their side)
    assert r["detection"]["faces_found"] == 3


def test_16bit_grey_is_scaled_not_clipped(tmp_path):
    arr = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (64, 1))
    p = tmp_path / "grey16.png"
    Image.fromarray(arr).save(p)
    assert Image.open(p).mode.startswith("I")
    x = load_image(p)
    assert x.shape == (1, 3, 64, 64)
    assert float(x[0, 0, 0, 0]) == -1.0 and float(x[0, 0, 0, -1]) == 1.0
    assert abs(float(x.mean())) < 0.02  # a mid-grey ramp, not near-white


def test_several_faces_say_which_and_face_n_picks_another(tmp_path, three_faces, capsys):
    p = tmp_path / "three.png"
    save_image(three_faces, p)
    assert main(["analyze", str(p), "--json"]) == 0
    cap = capsys.readouterr()
    det = json.loads(cap.out)["detection"]
    assert det["faces_found"] == 3 and det["index"] == 0
    assert "note: 3 faces found; using face 0" in cap.err and "--face N" in cap.err
    assert main(["analyze", str(p), "--json", "--face", "2"]) == 0
    other = json.loads(capsys.readouterr().out)["detection"]
    assert other["index"] == 2 and other["box"] != det["box"] and other["score"] < det["score"]
    assert main(["analyze", str(p), "--face", "3"]) == 2
    assert one_error_line(capsys.readouterr().err, "face 3 asked for, but 3 faces found (choose 0 to 2)")
    from editable_deepsc.inversion.prepare import prepare_image

    prep = prepare_image(three_faces, 64, face=1, check_face=True)
    assert prep.face_json()["found"] == 3 and prep.face_json()["used"] == 1 and prep.aligned
    assert "3 faces found; using face 1" in prep.face_note()


@pytest.mark.parametrize("text, clash", [("smile and frown", "happy and more angry"),
                                         ("smile and look neutral", "happy and more neutral")])
def test_contradictory_targets_are_refused(text, clash, capsys):
    assert main(["parse", text]) == 2
    assert one_error_line(capsys.readouterr().err, f"a face cannot look more {clash} at once")
    assert main(["parse", "happy and surprised"]) == 0  # a compound expression stays allowed


# ---------------------------------------------------------------------- smaller
def _fake_checkout(root: Path) -> Path:
    """A checkout with this repo's ``run`` and a stand-in ``.venv/bin/python`` that records pip calls
    and answers where ``editable_deepsc`` is installed (where ``pip install -e .`` last ran)."""
    (root / "requirements").mkdir(parents=True)
    shutil.copy(ROOT / "run", root / "run")
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (root / "requirements" / "base.txt").write_text("")
    (root / "requirements" / "nodeps.txt").write_text("")
    py = root / ".venv" / "bin" / "python"
    py.parent.mkdir(parents=True)
    py.write_text("""#!/usr/bin/env bash
venv="$(cd "$(dirname "$0")/.." && pwd)"
echo "$*" >> "$venv/calls.log"
if [[ "$1" == "-c" && "$2" == *find_spec* ]]; then cat "$venv/installed" 2>/dev/null; echo; exit 0; fi
if [[ "$1" == "-c" ]]; then exit 1; fi  # other queries (the data folder): unavailable here
if [[ "$*" == *" -e ."* ]]; then echo "$(pwd)/editable_deepsc/__init__.py" > "$venv/installed"; fi
exit 0
""")
    py.chmod(0o755)
    edsc = root / ".venv" / "bin" / "edsc"  # set-up steps that run the CLI (model conversion) do nothing here
    edsc.write_text("#!/usr/bin/env bash\nexit 0\n")
    edsc.chmod(0o755)
    return root


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_copied_checkout_installs_its_own_code(tmp_path):
    orig = _fake_checkout(tmp_path / "orig")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    first = subprocess.run(["bash", str(orig / "run"), "setup"], capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stderr
    again = subprocess.run(["bash", str(orig / "run"), "setup"], capture_output=True, text=True, env=env)
    assert "[setup] creating" not in again.stderr  # the stamp holds for the checkout itself
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(orig), str(copy)], check=True)
    r = subprocess.run(["bash", str(copy / "run"), "setup"], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "[setup] creating" in r.stderr, r.stderr
    assert (copy / ".venv" / "installed").read_text().startswith(str(copy) + "/")


@pytest.mark.parametrize("content", [None, "", "# only a comment\n"])
def test_eval_bad_instructions_write_nothing(content, tmp_path, capsys):
    spec = tmp_path / "instr.txt"
    if content is not None:
        spec.write_text(content)
    out = tmp_path / "res"
    assert main(["eval", "--instructions", str(spec), "--n", "1", "--out", str(out)]) == 2
    assert one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_one_snr_range_everywhere():
    from editable_deepsc.channel import SNR_RANGE_DB, check_snr
    from editable_deepsc.eval.compare_config import EVAL_SNR_RANGE, EvalConfig

    assert EVAL_SNR_RANGE == SNR_RANGE_DB == (-10.0, 40.0)
    assert EvalConfig(snrs=(35.0,), sweep_snrs=(35.0,), headline_snr=35.0).snrs == (35.0,)
    with pytest.raises(BadInput):
        EvalConfig(snrs=(41.0,))
    with pytest.raises(BadInput):
        check_snr(True)


# ---------------------------------------------------------------------- keep what works
@pytest.mark.parametrize("name, data, match", [
    ("notes.png", b"not an image", "cannot read"),
    ("empty.png", b"", "empty file"),
    ("cut.png", None, "cannot read"),
    ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"/>', "cannot read"),
])
def test_non_images_exit_2_one_line(name, data, match, tmp_path, capsys):
    p = tmp_path / name
    if data is None:
        buf = tmp_path / "full.png"
        Image.new("RGB", (64, 64), (1, 2, 3)).save(buf)
        data = buf.read_bytes()[:60]
        buf.unlink()
    p.write_bytes(data)
    for verb in ("transmit", "analyze", "invert"):
        assert main([verb, str(p)]) == 2, verb
        assert one_error_line(capsys.readouterr().err, match), verb
    with pytest.raises(ImageError):
        load_image(p)


@pytest.mark.parametrize("argv, match", [
    (["edit", "FACE", "-i", "smile", "--snr", "99"], "SNR"),
    (["edit", "FACE", "-i", "smile", "--channel", "wifi"], "'--channel'"),
    (["edit", "FACE", "-i", "smile", "--strength", "-1"], "'--strength'"),
    (["parse", "add a hat"], "unsupported instruction"),
    (["parse", "smile " * 100], "unsupported instruction"),
])
def test_bad_arguments_and_instructions_exit_2_one_line(argv, match, face64, capsys, monkeypatch):
    _no_models(monkeypatch)
    assert main([str(face64) if a == "FACE" else a for a in argv]) == 2
    assert one_error_line(capsys.readouterr().err, match)


def _toy_chat(monkeypatch, tmp_path):
    from web_toys import toy_face, toy_system

    system = toy_system()
    monkeypatch.setattr("editable_deepsc.cli.chat.build_system", lambda *a, **k: system)
    p = tmp_path / "toy.png"
    save_image(toy_face(system), p)
    return p


def test_chat_keeps_its_log_on_eof(tmp_path, monkeypatch, capsys):
    import io

    img = _toy_chat(monkeypatch, tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("smile\n"))  # then end of input
    assert main(["chat", str(img), "--out-dir", str(tmp_path / "c")]) == 0
    log = json.loads((tmp_path / "c" / "session.json").read_text())
    assert [t["instruction"] for t in log["turns"]] == ["smile"] and log["face"] is None
    assert (tmp_path / "c" / "turn_00.png").exists()


def test_chat_keeps_its_log_on_ctrl_c(tmp_path, monkeypatch, capsys):
    img = _toy_chat(monkeypatch, tmp_path)
    answers = iter(["smile"])

    def prompt(*a, **k):
        try:
            return next(answers)
        except StopIteration:
            raise KeyboardInterrupt from None

    monkeypatch.setattr("click.prompt", prompt)
    assert main(["chat", str(img), "--out-dir", str(tmp_path / "c")]) == 130
    log = json.loads((tmp_path / "c" / "session.json").read_text())
    assert [t["instruction"] for t in log["turns"]] == ["smile"]
