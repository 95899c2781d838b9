"""Command line: `python -m studio models | generate | regenerate | interpolate | render | train | evaluate | bench`.

Bad input never shows a traceback: one line `error: <what is wrong and what to do>` on stderr and
exit status 2. Set STUDIO_DEBUG=1 to see tracebacks of unexpected failures (exit status 1).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from studio.core.errors import InputError, StudioError, one_line
from studio.core.files import output_error, place_files
from studio.serving.process import apply_process_settings
from studio.training.voice_reduction import REDUCTIONS

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake as one `error:` line (exit 2), not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {one_line(message)} (see `python -m studio {self.prog.split()[-1]} --help`)\n")
        raise SystemExit(2)


def _say(kind: str, text: str) -> None:
    """One `warning:`, `note:` or `error:` line on stderr; text from a file (a track name) cannot
    break it into more lines or send escape codes to the terminal."""
    print(f"{kind}: {one_line(text)}", file=sys.stderr)


def _parse_params(items: list[str]) -> dict[str, str]:
    """`--param KEY=VALUE` pairs as text; the model's card checks each value (`Param.coerce`)."""
    from studio.serving.registry import quoted  # loaded when the command runs (a bad argument is answered first)

    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--param takes KEY=VALUE, got {quoted(item)}")
        params[key.strip()] = value.strip()
    return params


def _cmd_models(args: argparse.Namespace) -> int:
    from studio.serving.registry import default_registry  # loaded when the command runs

    registry = default_registry()
    cards = registry.cards()
    if args.json:
        print(json.dumps([c.to_json() for c in cards], indent=2))
        return 0
    for card in cards:
        tracks = ", ".join(f"{t['name']} ({t['program']})" for t in card.tracks)
        status = f"  [unavailable: {card.disabled}]" if card.disabled else ""
        print(f"{card.name:24s} {card.family:12s} {card.genre:12s} {tracks}{status}")
    for problem in registry.problems:
        _say("warning", problem)
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from studio.serving.registry import default_registry
    from studio.serving.service import (  # loaded when the command runs (a bad argument is answered first)
        AccompanyRequest,
        accompany,
    )

    source = Path(args.input)
    stem = source.stem
    outs = {k: getattr(args, k) for k in ("out_midi", "out_wav", "out_png")}
    _check_targets(*outs.values())
    out_dir = Path(args.out_dir) if args.out_dir else Path.cwd()
    with _scratch(outs) as scratch:
        request = AccompanyRequest(
            midi=source,
            model=args.model,
            seed=args.seed,
            params=_parse_params(args.param),
            out_dir=scratch or out_dir,
            name=stem,
            melody_track=args.melody_track,
            want_wav=args.out_wav is not None or not any(outs.values()),
            want_listen=False,  # the page's MP3 copy: the command line gives the WAV
            want_png=args.out_png is not None or not any(outs.values()),
            then=args.then,
            then_params=_parse_params(args.then_param),
            keep_tracks=args.keep_tracks,
            chords=args.chords,
        )
        registry = default_registry()
        one_shot, registry.one_shot = registry.one_shot, True  # this answer also starts torch and loads the model
        try:
            result = accompany(request, registry)
        finally:
            registry.one_shot = one_shot  # a test that runs commands in its own process keeps a server's registry
        written = _place_outputs(result, outs)
    for warning in result.warnings:
        _say("warning", warning)
    for note in result.notes:
        _say("note", note)
    m = result.metrics
    line = f"model {result.model}{' then ' + result.then if result.then else ''}, seed {result.seed}, key {m['key']}"
    if m["in_key"] == m["in_key"]:  # not NaN: there is an accompaniment to measure
        line += f": in-key {m['in_key']:.3f}, consonance {m['consonance']:.3f}"
    print(line)
    _print_chords(result)
    for path in written:
        print(f"wrote {path}")
    return 0


def _cmd_regenerate(args: argparse.Namespace) -> int:
    from studio.serving.regeneration import (  # loaded when the command runs (a bad argument is answered first)
        RegenerateRequest,
        regenerate,
    )

    source = Path(args.take)
    outs = {k: getattr(args, k) for k in ("out_midi", "out_wav", "out_png")}
    _check_targets(*outs.values())
    with _scratch(outs) as scratch:
        request = RegenerateRequest(
            midi=source,
            model=args.model,
            bars=args.bars,
            voices=args.voices,
            seed=args.seed,
            params=_parse_params(args.param),
            out_dir=scratch or (Path(args.out_dir) if args.out_dir else Path.cwd()),
            name=source.stem,
            want_wav=args.out_wav is not None or not any(outs.values()),
            want_listen=False,  # the page's MP3 copy: the command line gives the WAV
            want_png=args.out_png is not None or not any(outs.values()),
        )
        result = regenerate(request)
        written = _place_outputs(result, outs)
    for warning in result.warnings:
        _say("warning", warning)
    for note in result.notes:
        _say("note", note)
    print(f"model {result.model}, seed {result.seed}: bars {args.bars} regenerated")
    for path in written:
        print(f"wrote {path}")
    return 0


def _print_chords(result) -> None:
    """The take's chords: the ones given (as typed), and the ones heard in it, bar by bar."""
    from studio.core.chord_marks import progression_text  # with the command (the parser answers first)

    if result.given_chords:
        print(f"chords given: {result.given_chords}")
    heard = progression_text([m for m in result.chords if not m.given], result.bar_ticks, result.score.end_tick)
    if heard:
        print(f"chords heard: {heard}")


def _check_targets(*targets: str | None) -> None:
    """Refuse an output path whose folder does not exist, before any work is done. Every command
    treats a file path the same way (`generate`, `interpolate` and `render`): a typo in a path is
    said at once rather than made into new folders; `--out-dir` names a folder and is made."""
    for target in targets:
        if target is not None and not Path(target).parent.is_dir():
            raise InputError(f"cannot write {target}: folder {Path(target).parent} does not exist")


def _place_outputs(result, outs: dict[str, str | None]) -> list[Path]:
    """Put the result's files at the paths asked for (or keep them where they are): all of them or
    none (`place_files`), so a write that fails halfway leaves no partial file behind."""
    produced = {"out_midi": result.midi_path, "out_wav": result.wav_path, "out_png": result.png_path}
    if not any(outs.values()):
        return [p for p in produced.values() if p is not None]
    _check_targets(*outs.values())  # again: a folder may have gone while the model ran
    moves = [(produced[key], target) for key, target in outs.items() if target is not None and produced[key] is not None]
    try:
        return place_files(moves)
    except OSError as exc:
        raise output_error(exc) from None


@contextmanager
def _scratch(outs: dict[str, str | None]) -> Iterator[Path | None]:
    """A temporary folder for the results when they go to paths of their own (`--out-*`), removed
    afterwards whatever happened; None when they go to `--out-dir`."""
    if not any(outs.values()):
        yield None
        return
    try:
        folder = Path(tempfile.mkdtemp(prefix="studio-"))
    except OSError as exc:
        raise output_error(exc) from None
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _cmd_interpolate(args: argparse.Namespace) -> int:
    from studio.serving.service import (  # loaded when the command runs (a bad argument is answered first)
        InterpolateRequest,
        interpolate,
    )

    first, second = Path(args.first), Path(args.second)
    outs = {k: getattr(args, k) for k in ("out_midi", "out_wav", "out_png")}
    _check_targets(*outs.values())
    with _scratch(outs) as scratch:
        request = InterpolateRequest(
            first=first,
            second=second,
            model=args.model,
            steps=args.steps,
            out_dir=scratch or (Path(args.out_dir) if args.out_dir else Path.cwd()),
            name=f"{first.stem}-to-{second.stem}",
            want_wav=args.out_wav is not None or not any(outs.values()),
            want_listen=False,  # the page's MP3 copy: the command line gives the WAV
            want_png=args.out_png is not None or not any(outs.values()),
        )
        result = interpolate(request)
        written = _place_outputs(result, outs)
    for warning in result.warnings:
        _say("warning", warning)
    m = result.metrics
    print(
        f"model {result.model}: {first.name} to {second.name} in {m['steps']} steps; the first step gives back "
        f"{m['start_kept']:.0%} of the first melody's opening 16ths, the last {m['end_kept']:.0%} of the second's"
    )
    for path in written:
        print(f"wrote {path}")
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from studio.serving.service import render  # loaded when the command runs (a bad argument is answered first)

    _check_targets(args.out_wav)
    path, warnings = render(Path(args.input), args.out_wav)
    for warning in warnings:
        _say("warning", warning)
    print(f"wrote {path}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from studio.training.train import (  # loaded when the command runs (a bad argument is answered first)
        TrainConfig,
        run_training,
    )

    if args.minutes is not None and args.minutes <= 0:
        raise InputError("--minutes must be above 0")
    config = TrainConfig(
        family=args.family,
        genre=args.genre,
        data=args.data,
        minutes=args.minutes if args.minutes is not None else 30.0,
        steps=args.steps,
        seed=args.seed,
        out=Path(args.out) if args.out else None,
        fresh=args.fresh,
        run_dir=Path(args.run_dir) if args.run_dir else None,
        overrides=_parse_params(args.set),
        device=args.device,
        evaluate=not args.no_evaluate,
        evaluate_unseen=args.unseen,
        max_pieces=args.max_pieces,
        threads=args.threads,
        reduction=args.reduction,
    )
    try:
        card = run_training(config)
    except ValueError as exc:  # a bad --set or data the family cannot learn from
        raise InputError(str(exc)) from None
    if card:  # rank 0 of a torchrun job, or a single process
        print(f"wrote {config.stem.with_suffix('.safetensors')} and {config.stem.with_suffix('.json')} ({card['training']['steps']} steps)")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from studio.training.evaluate import (  # loaded when the command runs (a bad argument is answered first)
        EvaluationConfig,
        evaluate,
        format_report,
    )

    pieces = tuple(p.strip() for p in args.pieces.split(",") if p.strip()) if args.pieces else None
    config = EvaluationConfig(
        n=args.n,
        unseen=args.unseen,
        seed=args.seed,
        params=_parse_params(args.param),
        copy_check=not args.no_copy_check,
        data=args.data,
        pieces=pieces,
        split=args.split,
    )
    registry = None
    if args.checkpoints:
        from studio.serving.registry import ModelRegistry  # loaded when the command runs

        if not Path(args.checkpoints).is_dir():
            raise InputError(
                f"--checkpoints {args.checkpoints}: no such folder (give the folder that holds NAME.json and NAME.safetensors)"
            )
        registry = ModelRegistry(args.checkpoints)
    report = evaluate(args.model, config, registry, progress=not args.json)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from bench import run_all  # the benchmarks load only for `bench`

    only = tuple(s.strip() for s in args.only.split(",") if s.strip()) if args.only else None
    if args.device not in (None, "cpu") and not args.device.startswith("cuda"):
        raise InputError(f"unknown device '{args.device}': use cpu or cuda")
    # With --json, standard output is the JSON alone: the tables printed as each benchmark ends go to standard error.
    results = run_all(quick=args.quick, only=only, device=args.device, out=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="studio", description="The music studio: melody in, accompaniment out.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("models", help="list the models the studio knows")
    p.add_argument("--json", action="store_true", help="print the model cards as JSON")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("generate", help="accompany a melody: MIDI in, MIDI + WAV + PNG out")
    p.add_argument("input", help="a .mid file with a melody (or a song whose melody is found)")
    p.add_argument("--model", default="rules", help="model name (see `models`), default: rules")
    p.add_argument("--seed", default=0, help="random seed, default: 0")
    p.add_argument("--out-midi", help="where to write the accompanied MIDI")
    p.add_argument("--out-wav", help="where to write the audio (44.1 kHz WAV)")
    p.add_argument("--out-png", help="where to write the piano roll picture")
    p.add_argument("--out-dir", help="folder for all outputs when no --out-* is given (default: here)")
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="a model parameter (repeatable)")
    p.add_argument("--melody-track", type=int, help="index of the melody track (default: found automatically)")
    p.add_argument("--then", metavar="MODEL", help="after a model that writes melody (transformer-folk): accompany the result with MODEL")
    p.add_argument("--then-param", action="append", default=[], metavar="K=V", help="a parameter of the --then model (repeatable)")
    p.add_argument(
        "--chords",
        metavar="TEXT",
        help="chords the accompanist keeps to (models that follow chords, e.g. rules): 'C G/B Am F' is a chord a bar, "
        "'C G | Am F' two a bar; looped to the melody's end",
    )
    p.add_argument(
        "--keep-tracks",
        action="store_true",
        help="keep the song's other tracks (drums, bass, pads...): the accompaniment is added to the song, not a replacement of it",
    )
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("regenerate", help="write some bars of a take again (and some voices), keeping the rest note for note")
    p.add_argument("take", help="a take's .mid file (what `generate` wrote: the melody first, then the model's tracks)")
    p.add_argument("--model", required=True, help="the accompanist whose tracks the take has (see `models`)")
    p.add_argument("--bars", required=True, help="the bars to write again, e.g. 3-4 (1 is the first full bar, a pickup is bar 0)")
    p.add_argument("--voices", help="only these of the model's voices, e.g. Alto,Bass (default: all; the rules' tracks go together)")
    p.add_argument("--seed", default=0, help="random seed, default: 0")
    p.add_argument("--out-midi", help="where to write the new take's MIDI")
    p.add_argument("--out-wav", help="where to write its audio (44.1 kHz WAV)")
    p.add_argument("--out-png", help="where to write its piano roll picture")
    p.add_argument("--out-dir", help="folder for all outputs when no --out-* is given (default: here)")
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="a model parameter (repeatable)")
    p.set_defaults(func=_cmd_regenerate)

    p = sub.add_parser("interpolate", help="walk from one melody to another through a VAE's latent space, as one piece")
    p.add_argument("first", help="the melody to start from (.mid)")
    p.add_argument("second", help="the melody to arrive at (.mid)")
    p.add_argument("--model", default="vae-folk", help="a model that interpolates (a VAE), default: vae-folk")
    p.add_argument("--steps", default=5, help="windows on the way, both melodies included (2-16, default 5)")
    p.add_argument("--out-midi", help="where to write the MIDI")
    p.add_argument("--out-wav", help="where to write the audio (44.1 kHz WAV)")
    p.add_argument("--out-png", help="where to write the piano roll picture")
    p.add_argument("--out-dir", help="folder for all outputs when no --out-* is given (default: here)")
    p.set_defaults(func=_cmd_interpolate)

    p = sub.add_parser("render", help="MIDI -> WAV with the studio's synthesizer (nothing generated)")
    p.add_argument("input", help="a .mid file")
    p.add_argument("--out-wav", required=True, help="where to write the WAV")
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser("train", help="train a model family on a genre (checkpoint + card + history)")
    p.add_argument("--family", required=True, help="model family, e.g. gan")
    p.add_argument("--genre", required=True, help="genre name: chorale, renaissance, quartet, or your own with --data PATH")
    p.add_argument(
        "--data",
        help="corpus:NAME (music21 corpus genre), a folder of MIDI files, or cache:FILE.npz (a dataset built elsewhere); default: corpus:GENRE",
    )
    p.add_argument("--minutes", type=float, help="time budget (default 30)")
    p.add_argument("--steps", type=int, help="stop after this many steps instead of a time budget")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", help="checkpoint path without suffix (default models/checkpoints/FAMILY-GENRE)")
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming a saved run")
    p.add_argument("--run-dir", help="where the resumable state lives (default: under ~/.cache/music-studio/runs)")
    p.add_argument("--set", action="append", default=[], metavar="K=V", help="a family config setting (repeatable)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--unseen", type=int, default=100, help="unseen tunes in the final evaluation (default 100)")
    p.add_argument("--no-evaluate", action="store_true", help="skip the evaluation at the end")
    p.add_argument("--max-pieces", type=int, help="use only the first N pieces (quick runs)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice; 1 on a shared machine)")
    p.add_argument(
        "--reduction",
        choices=REDUCTIONS,
        help="how a piece of five or more voices becomes four: its four highest voices, or the top voice, two folded middle lines "
        "and the bass (default: the genre's)",
    )
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="metrics of a model's samples vs held-out real music")
    p.add_argument("--model", required=True, help="model name (see `models`)")
    p.add_argument("--n", type=int, help="held-out pieces to use (default: all)")
    p.add_argument(
        "--pieces",
        metavar="ID,ID",
        help="only these held-out pieces (ids from models/checkpoints/splits/), read alone: their figures in seconds, nothing else",
    )
    p.add_argument("--unseen", type=int, default=100, help="unseen folk tunes to accompany (default 100, 0 to skip)")
    p.add_argument("--seed", type=int, default=0, help="seed of every sample (default 0)")
    p.add_argument("--data", help="dataset genre to evaluate on (default: the model's genre; chorale for 'any')")
    p.add_argument(
        "--split",
        choices=("held_out", "validation"),
        default="held_out",
        help="the pinned split's pieces to accompany: held_out (the test, default) or validation (to choose between models)",
    )
    p.add_argument(
        "--checkpoints", help="the folder of the model's card and weights (default: models/checkpoints), e.g. a train --out folder"
    )
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="a model parameter (repeatable)")
    p.add_argument("--no-copy-check", action="store_true", help="skip the check against training bars")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("bench", help="run the benchmark suite (ratios measured side by side)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--quick", action="store_true", help="a shorter run (fewer repeats, shorter music)")
    p.add_argument(
        "--only",
        help="comma-separated benchmarks to run (default: all but loading): "
        "synthesis, models, sampling, transformer, batching, loading, startup, classroom, overhead, regeneration, loudness",
    )
    p.add_argument("--device", help="where the models run: cpu or cuda (default: cuda when there is a GPU)")
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input or unavailable, 1 internal error)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    apply_process_settings()
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except StudioError as exc:
        _say("error", str(exc))
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the promise is: no traceback for users
        if os.environ.get("STUDIO_DEBUG"):
            raise
        _say("error", f"internal error ({type(exc).__name__}: {exc}); please report it (STUDIO_DEBUG=1 shows details)")
        return 1


def run() -> None:
    """The `studio` command (and ``python -m studio``): `main`, then the process ends at once.

    Python's own teardown after a command costs 0.5-0.7 s once torch is imported (its libraries'
    destructors, measured 2026-12-07 on the project's 2-core machine), a seventh of the 5 s a take
    has to be answered in through the command (issue 23). Every file a command writes is complete
    and renamed into place before `main` returns, and its threads are idle or daemons, so the
    process ends without that teardown: standard output and error flushed, logging's handlers
    closed, then `os._exit` with `main`'s status. `main` itself returns (tests call it in-process).
    """
    import logging

    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: what was printed is lost either way
            code = code or 1
    logging.shutdown()
    os._exit(code)
