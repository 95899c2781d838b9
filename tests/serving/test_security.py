"""Security (issue 10): weights only through safetensors, no user text in a shell or a path, uploads
capped before parsing, the server serves no file but its own outputs, old results are cleaned.

The file-route test builds the page in this process to list every GET route of Gradio's app that
takes a path parameter, and asks the running server (`server` fixture) for /etc/passwd, the app's
own source and other files through each of them, as absolute, relative, URL-encoded and
double-encoded paths: every answer must be a 4xx without the file's content.
"""

from __future__ import annotations

import http.client
import io
import os
import re
import time
import tokenize
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import midi_factory as mf
import pytest
from gradio_client import Client, handle_file
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core.errors import InputError
from studio.core.filenames import safe_stem
from studio.core.midi import read_midi
from studio.serving import service
from studio.ui import actions as ui_actions

REPO = Path(__file__).resolve().parents[2]
CODE_DIRS = [REPO / "studio", REPO / "models", REPO / "bench"]
SAFE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,60}$")


# --------------------------------------------------------------------------- weights and shells


def _code_tokens(path: Path) -> list[str]:
    """The code of a Python file as NAME/OP tokens (comments and strings left out)."""
    with path.open("rb") as f:
        return [t.string for t in tokenize.tokenize(f.readline) if t.type in (tokenize.NAME, tokenize.OP)]


def _uses(tokens: list[str], dotted: str) -> bool:
    """Whether `tokens` use the dotted name (e.g. 'torch.load'), or a lone name that is not an attribute
    (the builtin `eval`, not `model.eval()`)."""
    parts = dotted.split(".")
    pattern = [p for part in parts for p in (part, ".")][:-1]
    n = len(pattern)
    return any(tokens[i : i + n] == pattern and (i == 0 or tokens[i - 1] != ".") for i in range(len(tokens)))


def _pickle_allowed(tokens: list[str]) -> bool:
    """`allow_pickle=` set to anything but False (numpy's default, False, is safe)."""
    return any(tokens[i : i + 2] == ["allow_pickle", "="] and tokens[i + 2 : i + 3] != ["False"] for i in range(len(tokens)))


UNSAFE_LOADERS = [
    "pickle",
    "cPickle",
    "dill",
    "cloudpickle",
    "joblib",
    "marshal",
    "shelve",
    "torch.load",
    "torch.jit.load",
    "torch.package",
    "yaml.load",
    "yaml.unsafe_load",
    "eval",
    "exec",
]
SHELL = ["subprocess", "os.system", "os.popen", "os.spawnl", "os.execv", "pty", "shlex"]


def _python_files(folders: list[Path]) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py")) + [REPO / "app.py"]


def test_the_scanner_finds_what_it_looks_for(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text('"""torch.load in a docstring is fine."""\nimport torch  # pickle in a comment is fine\nstate = torch.load("w.pt")\n')
    sample.write_text(sample.read_text() + "model.eval()\nnp.load(f, allow_pickle=False)\n")
    tokens = _code_tokens(sample)
    assert _uses(tokens, "torch.load") and not _uses(tokens, "pickle")
    assert not _uses(tokens, "eval") and not _pickle_allowed(tokens)
    sample.write_text("x = eval(text)\nnp.load(f, allow_pickle=True)\n")
    tokens = _code_tokens(sample)
    assert _uses(tokens, "eval") and _pickle_allowed(tokens)


def test_weights_are_read_only_through_safetensors():
    offenders = []
    for path in _python_files(CODE_DIRS):
        tokens = _code_tokens(path)
        offenders += [f"{path.relative_to(REPO)}: {name}" for name in UNSAFE_LOADERS if _uses(tokens, name)]
        if _pickle_allowed(tokens):
            offenders.append(f"{path.relative_to(REPO)}: allow_pickle")
    assert not offenders, offenders
    checkpoints = REPO / "models" / "checkpoints"
    assert {p.suffix for p in checkpoints.iterdir() if p.is_file()} <= {".json", ".safetensors"}
    for weights in checkpoints.glob("*.safetensors"):
        from safetensors import safe_open

        with safe_open(str(weights), "pt") as f:  # a safetensors header, not a pickle
            assert f.keys()


def test_no_shell_in_the_studio():
    """The studio, its models and the page never start a process (the benchmarks may, with fixed arguments)."""
    offenders = [
        f"{p.relative_to(REPO)}: {name}"
        for p in _python_files([REPO / "studio", REPO / "models"])
        for name in SHELL
        if _uses(_code_tokens(p), name)
    ]
    assert not offenders, offenders


# --------------------------------------------------------------------------- user text and paths


@settings(max_examples=300, deadline=None, database=None)
@given(
    name=st.one_of(
        st.text(max_size=80),
        st.sampled_from(
            ["../../etc/passwd", "/etc/passwd", "..", ".", "a/../../b", "C:\\Windows\\x", "x\x00y", "$(rm -rf ~)", "`id`", "; ls", "~root"]
        ),
    )
)
def test_names_become_safe_file_stems(name):
    for stem in (safe_stem(name), safe_stem(name, "take", 60)):
        assert SAFE_NAME.match(stem), stem


@pytest.mark.parametrize("name", ["../../../../tmp/escaped", "/etc/passwd", "..", "a/../../b", "$(touch pwned)", "x\x00y"])
def test_request_names_never_leave_the_output_folder(name, tune_paths, tmp_path):
    out = tmp_path / "out"
    result = service.accompany(service.AccompanyRequest(midi=tune_paths["four_four.mid"], name=name, out_dir=out, want_wav=False))
    for path in (result.midi_path, result.png_path):
        assert path.parent == out and SAFE_NAME.match(path.stem.split("-rules-")[0])
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted([result.midi_path.name, result.png_path.name])
    assert not Path("/tmp/escaped-rules-seed0.mid").exists()


@pytest.mark.parametrize("model", ["../../../etc/passwd", "/etc/passwd", "rules/../gan-chorale", "$(id)", "gan-chorale\x00"])
def test_model_names_are_looked_up_never_opened(model, tune_paths):
    with pytest.raises(InputError, match="unknown model"):
        service.accompany(service.AccompanyRequest(midi=tune_paths["four_four.mid"], model=model, want_wav=False))


@pytest.mark.parametrize("seed", [1.5, True, None, "inf", float("nan"), "1" * 5000, pytest.param(10**5000, id="10**5000"), "1e400"])
def test_a_seed_that_is_not_a_whole_number_is_refused_not_rounded(seed, tune_paths, tmp_path):
    """Issue 23: seed 1.5 / True / None were rounded; 'inf' and 5,000 digits overflowed."""
    with pytest.raises(InputError, match=r"the seed must be (a whole number|between)") as caught:
        service.accompany(service.AccompanyRequest(midi=tune_paths["four_four.mid"], seed=seed, out_dir=tmp_path, want_wav=False))
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize(
    "params_json, phrase",
    [
        ("[" * 10_000 + "]" * 10_000, "characters long"),
        ("[" * 3_000 + "]" * 3_000, "nest more than"),
        ('{"iterations": "' + "9" * 10_000_000 + '"}', "over the 10,000 limit"),
        ('{"iterations": 1e400}', "1e400 is too large"),
    ],
)
def test_the_generate_api_refuses_deep_long_and_non_finite_json_in_one_line(params_json, phrase, tune_paths):
    """Issue 23: /generate with JSON nested 10,000 deep raised RecursionError (a generic error, a
    traceback in the log); a 10 MB value was echoed whole."""
    import gradio as gr

    with pytest.raises(gr.Error, match=phrase) as caught:
        ui_actions.generate_endpoint(str(tune_paths["four_four.mid"]), "arcnn-chorale", 0, params_json)
    assert len(str(caught.value)) < 300


def test_oversized_files_are_refused_before_they_are_read(tmp_path, monkeypatch):
    big = tmp_path / "big.mid"
    big.write_bytes(mf.too_large(3_000_000))

    def never(*_a, **_k):
        raise AssertionError("the file was read")

    monkeypatch.setattr(Path, "read_bytes", never)
    with pytest.raises(InputError, match=r"the file is 2\.9 MB, over the 2 MB limit"):
        read_midi(big)


# --------------------------------------------------------------------------- the running server


def _get(server: str, raw_path: str) -> tuple[int, bytes]:
    """GET `raw_path` exactly as written (no normalising of '..' or of %-escapes)."""
    url = urlsplit(server)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=20)
    try:
        conn.request("GET", raw_path)
        response = conn.getresponse()
        return response.status, response.read(1 << 20)
    finally:
        conn.close()


def _file_routes() -> list[str]:
    """Every GET route of the page's app that takes a parameter, as a path template."""
    import gradio as gr

    from studio.ui.page import build_app

    def walk(routes):
        for route in routes:
            if hasattr(route, "path") and hasattr(route, "methods"):
                if route.methods & {"GET", "HEAD"} and getattr(route, "param_convertors", None):
                    yield route.path  # the full path, the router's prefix included
            else:  # an included router
                inner = getattr(route, "original_router", None) or getattr(route, "router", None) or route
                yield from walk(getattr(inner, "routes", []))

    return sorted(set(walk(gr.routes.App.create_app(build_app()).routes)))


# Routes that stream events of a session (server-sent events), never a file: probed elsewhere by Gradio.
EVENT_STREAMS = {
    "/gradio_api/heartbeat/{session_hash}",
    "/gradio_api/call/{api_name}/{event_id}",
    "/gradio_api/call/v2/{api_name}/{event_id}",
}


def _targets() -> dict[str, bytes]:
    """What must never be served, each with a piece of its content that must never appear in an answer."""
    return {
        "/etc/passwd": b"root:",
        str(REPO / "app.py"): b"launch_options",
        str(REPO / "studio" / "service.py"): b"def accompany(",
        str(REPO / "models" / "checkpoints" / "rules.json"): b'"family"',
        "/proc/self/environ": b"GRADIO_TEMP_DIR",
    }


def _spellings(target: str) -> list[str]:
    """`target` as an absolute path, relative to the server's folder, and URL-encoded once and twice."""
    relative = os.path.relpath(target, REPO)
    up = "../" * 8 + target.lstrip("/")
    forms = [target, relative, up, "....//" * 8 + target.lstrip("/"), "//" + target.lstrip("/")]
    forms += [quote(f, safe="") for f in (target, relative, up)]
    forms += [quote(quote(up, safe=""), safe=""), target + "%00.png", "file://" + target]
    return forms


def _fill(template: str, attack: str, where: str) -> str:
    """`template` with the parameter `where` set to `attack` and the others to harmless values."""

    def value(match: re.Match) -> str:
        name = match.group(1).split(":")[0]
        return attack if name == where else {"environment": "client", "ext": "ts"}.get(name, "x")

    return re.sub(r"\{([^}]+)\}", value, template)


def _known_upstream_500(path: str, status: int, body: bytes) -> bool:
    """Gradio 6.31's proxy route answers a NUL byte with a 500 (httpx.InvalidURL is not caught): no
    file is served and the server goes on; anything else that is not a 4xx fails the test."""
    return status == 500 and path.startswith("/gradio_api/proxy=") and "%00" in path and body == b"Internal Server Error"


def test_no_file_route_serves_anything_but_the_apps_outputs(server, tune_paths):
    routes = [r for r in _file_routes() if r not in EVENT_STREAMS]
    assert "/gradio_api/file={path_or_url:path}" in routes and "/static/{path:path}" in routes  # the list is real
    served = []
    probes = 0
    for template in routes:
        for where in re.findall(r"\{([^}:]+)", template):
            for target, marker in _targets().items():
                for attack in _spellings(target):
                    status, body = _get(server, _fill(template, attack, where))
                    probes += 1
                    path = _fill(template, attack, where)
                    if marker in body or not (400 <= status < 500 or _known_upstream_500(path, status, body)):
                        served.append(f"{status} {path}")
    assert probes > 500
    assert not served, served[:10]

    # The control: a file this session got back is served (so the refusals above are not a dead server).
    outputs = Client(server, verbose=False, download_files=False).predict(
        handle_file(str(tune_paths["four_four.mid"])), "rules", 0, api_name="/accompany"
    )
    status, body = _get(server, urlsplit(outputs[2]["url"]).path)
    assert status == 200 and body[:4] == b"MThd"
    folder = str(Path(outputs[2]["path"]).parent)
    assert 400 <= _get(server, "/gradio_api/file=" + folder)[0] < 500  # no folder listings


def test_uploads_over_2_mb_are_refused_and_the_server_keeps_serving(server, tune_paths, tmp_path):
    big = tmp_path / "big.mid"
    big.write_bytes(mf.too_large(3_000_000))
    client = Client(server, verbose=False)
    with pytest.raises(Exception, match="exceeds the maximum file size"):
        client.predict(handle_file(str(big)), "rules", 0, api_name="/accompany")
    upload_dir = Path(os.environ["GRADIO_TEMP_DIR"])
    before = {p for p in upload_dir.rglob("*") if p.is_file()}

    # A client that ignores the limit: the server answers 413 and keeps nothing, whether the size is
    # announced (Content-Length) or not (a chunked body, counted as it arrives).
    answer = httpx.post(server + "gradio_api/upload", files={"files": ("big.mid", big.read_bytes(), "audio/midi")}, timeout=60)
    assert answer.status_code == 413

    def chunks():
        boundary = b'--x\r\nContent-Disposition: form-data; name="files"; filename="big.mid"\r\nContent-Type: audio/midi\r\n\r\n'
        yield boundary
        data = big.read_bytes()
        for i in range(0, len(data), 65536):
            yield data[i : i + 65536]
        yield b"\r\n--x--\r\n"

    answer = httpx.post(
        server + "gradio_api/upload", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=x"}, timeout=60
    )
    assert answer.status_code == 413
    time.sleep(0.5)
    assert not [p for p in upload_dir.rglob("*") if p.is_file() and p not in before and p.stat().st_size > 2_000_000]
    _wav, _png, midi = client.predict(handle_file(str(tune_paths["two_four.mid"])), "rules", 0, api_name="/accompany")
    assert read_midi(midi).score.tracks


def test_an_upload_name_cannot_choose_where_the_file_goes(server, tune_paths, tmp_path):
    escaped = Path(os.environ["TMPDIR"]) / "escaped.mid"
    data = tune_paths["four_four.mid"].read_bytes()
    answer = httpx.post(server + "gradio_api/upload", files={"files": ("../../../../" + str(escaped).lstrip("/"), data, "audio/midi")})
    assert answer.status_code == 200 and not escaped.exists()
    (stored,) = answer.json()
    assert Path(stored).resolve().is_relative_to(Path(os.environ["GRADIO_TEMP_DIR"]).resolve())

    odd = tmp_path / "evil; rm -rf ~ $(id) 'x' ü.mid"
    odd.write_bytes(data)
    _wav, _png, midi = Client(server, verbose=False, download_files=False).predict(handle_file(str(odd)), "rules", 0, api_name="/accompany")
    assert SAFE_NAME.match(Path(midi["path"]).stem.removesuffix("-rules-seed0"))


# --------------------------------------------------------------------------- cleaning


def test_results_of_finished_sessions_are_cleaned(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    root = tmp_path / ui_actions.RESULTS_ROOT_NAME
    old, recent = root / "old-session", root / "recent-session"
    for folder in (old, recent):
        folder.mkdir(parents=True)
        (folder / "take.wav").write_bytes(b"RIFF" + bytes(1000))
    hour_ago = time.time() - ui_actions.KEEP_RESULTS_S - 5
    os.utime(old, (hour_ago, hour_ago))
    fresh = ui_actions.results_dir()
    assert not old.exists() and recent.exists() and fresh.is_dir() and fresh.parent == root
    assert len(fresh.name) >= 8 and fresh.name not in {"old-session", "recent-session"}  # random, not guessable
    assert io.BytesIO((recent / "take.wav").read_bytes()).read(4) == b"RIFF"
