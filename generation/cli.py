"""Command line: `python -m generation build|usefulness|preview|validate|import-maps`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from contracts.bundle import bundle_task, entries_field
from contracts.usefulness import DEFAULT_CORRECT_SHARE, FORWARD_SIMULATION, MAX_PANELS, USEFULNESS_TASKS
from generation.build import BuildOptions, build_bundle
from generation.errors import GenerationError
from generation import import_maps
from generation.usefulness import TASK_FLAG, UsefulnessOptions, build_usefulness_bundle
from generation.preview import load_manifest, write_contact_sheet
from generation.render import DEFAULT_STYLE, RENDER_STYLES, RESAMPLE_MODES, RenderSettings
from generation.design import ALL_PAIRS, DESIGNS, PAPER
from generation.selection import QUESTION_TYPES
from generation.validate import validate_bundle

MAX_LISTED_PROBLEMS = 50


def _dataset_text(value: str) -> tuple[str, str]:
    key, sep, text = value.partition("=")
    if not sep or not key or not text.strip():
        raise argparse.ArgumentTypeError(f"expected DATASET=TEXT, got {value!r}")
    return key, text.strip()


def _method_list(value: str) -> tuple[str, ...]:
    """``m1,m2`` → ("m1", "m2"); the keys themselves are checked with the design."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return number


def _create_parent(path: Path) -> None:
    """Create the folders above an output path, as every writing command of the project does.

    A parent that cannot be created (say, a file stands in its way) is left to the writer's own
    check, which names the problem in one sentence.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with its three subcommands."""
    parser = argparse.ArgumentParser(
        prog="python -m generation",
        description="Build, preview and validate blinded stimulus bundles for the BLA user study.",
        epilog="Formats of the explanations file and the bundle manifest: docs/formats.md.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{build,usefulness,preview,validate,import-maps}")

    build = commands.add_parser("build", help="write a stimulus bundle from explanation files",
                                description="Choose image pairs, render both explanations on each image and "
                                            "write a bundle folder (manifest.json + images/) atomically.")
    build.add_argument("--explanations", nargs="+", type=Path, required=True, metavar="FILE.npz",
                       help="explanation files, one per (dataset, method), e.g. bla_t, l2x_f and cam of mnist38")
    build.add_argument("--out", type=Path, required=True, metavar="BUNDLE", help="bundle folder to create")
    build.add_argument("--compare", nargs="+", default=(), metavar="A:B",
                       help="comparisons to build, each two method keys of the given files, e.g. bla_t:grad_cam "
                            "grad_cam:integrated_gradients (question type A_vs_B); B may be 'random' for a "
                            "random-swap control")
    build.add_argument("--design", default=None, metavar="|".join(DESIGNS),
                       help=f"{ALL_PAIRS}: every pair of the given methods; {PAPER}: the paper's "
                            f"{', '.join(QUESTION_TYPES)} (default: {PAPER} when bla_t is among the files, "
                            f"else {ALL_PAIRS})")
    build.add_argument("--controls", type=_method_list, default=(), metavar="M1,M2",
                       help="also build the random-swap control M_vs_random of these methods (M's map of "
                            "another image of the same dataset)")
    build.add_argument("--question-types", nargs="+", default=None, metavar="A_vs_B",
                       help="the comparisons as question types (an older spelling of --compare)")
    build.add_argument("--per-type", type=_positive_int, default=12, metavar="N",
                       help="pairs per comparison and dataset, spread evenly over classes (default: %(default)s)")
    build.add_argument("--include-misclassified", action="store_true",
                       help="admit images both systems classify the same but wrongly")
    _add_wording_arguments(build, "pair choice, random swaps and file names", "--task", "the systems were")
    _add_render_arguments(build, "both sides of every pair")

    preview = commands.add_parser("preview", help="draw a contact sheet of a bundle",   description="Draw one row per pair or trial (image, both sides or its panels, method names, classes) "
                                              "for a researcher to eyeball.")
    preview.add_argument("bundle", type=Path, help="bundle folder")
    preview.add_argument("--out", type=Path, required=True, metavar="SHEET.png", help="contact sheet to write")
    preview.add_argument("--thumb", type=int, default=160, help="thumbnail side in pixels (default: %(default)s)")
    preview.add_argument("--max-pairs", type=_positive_int, default=None, help="draw only the first N pairs")

    validate = commands.add_parser("validate", help="check a bundle's schema, files and blinding",
                                      description="Check the manifest schema, that every file exists and opens, "
                                               "that sizes agree and that no file name or image metadata "
                                               "reveals a method. Exit status 1 lists the problems.")
    validate.add_argument("bundle", type=Path, help="bundle folder")
    import_maps.add_parser(commands)
    _add_usefulness_parser(commands)
    return parser


def _share(value: str) -> float:
    share = float(value)
    if not 0.0 <= share <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not a share between 0 and 1")
    return share


def _add_usefulness_parser(commands: argparse._SubParsersAction) -> None:
    """Register `usefulness`: a distinction, agreement or forward-simulation bundle (docs/formats.md)."""
    parser = commands.add_parser(
        "usefulness", help="write a usefulness bundle (distinction, agreement, forward simulation)",
        description="Choose images (misclassified ones included), render each trial's explanations with one "
                    "setting and write a usefulness bundle folder (manifest.json with task and trials + images/) "
                    "atomically.")
    parser.add_argument("--task", required=True, metavar="|".join(USEFULNESS_TASKS),
                        help="distinction: k panels, one per top-k class (needs class_maps); agreement: the "
                             "prediction and its explanation; forward_simulation: pre, learn and post phases")
    parser.add_argument("--explanations", nargs="+", type=Path, required=True, metavar="FILE.npz",
                        help="explanation files, one per (dataset, method), as for build")
    parser.add_argument("--out", type=Path, required=True, metavar="BUNDLE", help="bundle folder to create")
    parser.add_argument("--per-method", type=_positive_int, default=12, metavar="N",
                        help="distinction and agreement: trials per method and dataset, the same images for every "
                             "method where possible (default: %(default)s)")
    parser.add_argument("--k", type=_positive_int, default=None, metavar="K",
                        help=f"distinction: panels per trial (default: min(classes, {MAX_PANELS}))")
    parser.add_argument("--correct-share", type=_share, default=None, metavar="S",
                        help=f"share of trials whose prediction is correct (agreement default: {DEFAULT_CORRECT_SHARE:g}; "
                             "other tasks: the images as drawn)")
    for phase, text in (("pre", "pre-test images (no explanation)"),
                        ("learn", "learning images (one trial per arm: each method and 'none')"),
                        ("post", "post-test images (no explanation, unseen)")):
        parser.add_argument(f"--{phase}", type=_positive_int, default=6, metavar="N",
                            help=f"{FORWARD_SIMULATION}: {text} per dataset (default: %(default)s)")
    _add_wording_arguments(parser, "image choice and file names", TASK_FLAG, "the model was")
    _add_render_arguments(parser, "all panels of every trial")


def _run_usefulness(args: argparse.Namespace, argv: Sequence[str]) -> int:
    options = UsefulnessOptions(
        task=args.task, explanation_files=tuple(args.explanations), out=args.out, per_method=args.per_method,
        k=args.k, correct_share=args.correct_share, pre=args.pre, learn=args.learn, post=args.post, seed=args.seed,
        titles=dict(args.title), dataset_tasks=dict(args.dataset_tasks), render=render_settings(args),
        overwrite=args.overwrite, workers=args.workers, argv=tuple(argv), allow_unselective=args.allow_unselective,
    )
    result = build_usefulness_bundle(options, progress=True)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    manifest = result.manifest
    trials = manifest["trials"]
    arms = f", arms {', '.join(manifest['arms'])}" if manifest["arms"] else ""
    datasets = ", ".join(d["key"] for d in manifest["datasets"])
    wrong = sum(not t["model_correct"] for t in trials)
    print(f"wrote {len(trials)} {args.task} trials ({wrong} with a misclassified image{arms}) for {datasets} "
          f"to {result.bundle} (bundle {manifest['bundle_id']}, style {options.render.style})")
    return 0


def _add_wording_arguments(parser: argparse.ArgumentParser, seeded: str, task_flag: str, who: str) -> None:
    """The seed and the datasets' wording flags that `build` and `usefulness` share (the "trained to"
    flag is ``task_flag``: usefulness' own --task names its task); both fill ``dataset_tasks``."""
    parser.add_argument("--seed", type=int, default=0, help=f"seed for {seeded} (default: %(default)s)")
    parser.add_argument("--title", action="append", type=_dataset_text, default=[], metavar="DATASET=TEXT",
                        help="dataset title for the study (default: from the files); repeat per dataset")
    parser.add_argument(task_flag, dest="dataset_tasks", action="append", type=_dataset_text, default=[],
                        metavar="DATASET=TEXT", help=f'what {who} trained to do, shown as "trained to TEXT" '
                                                     "(default: from the files); repeat per dataset")


def _add_render_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """The drawing, output and selectivity flags that `build` and `usefulness` share."""
    parser.add_argument("--style", default=DEFAULT_STYLE,
                        help=f"how {what} are drawn: "
                             + "; ".join(f"{s.name}: {s.description} ({s.upscale} upscaling)" for s in RENDER_STYLES.values())
                             + " (default: %(default)s)")
    parser.add_argument("--size", type=int, default=224, help="side of the square stimulus images in pixels (default: %(default)s)")
    parser.add_argument("--image-resample", choices=list(RESAMPLE_MODES), default="bilinear",
                        help="how the photo is scaled to --size (default: %(default)s)")
    parser.add_argument("--upscale", choices=list(RESAMPLE_MODES), default=None,
                        help="how the explanation grid is scaled: nearest shows cells, bilinear smooths (default: the style's)")
    parser.add_argument("--colormap", default="turbo", help="matplotlib colormap of the explanation (default: %(default)s)")
    parser.add_argument("--alpha", type=float, default=0.5, help="weight of the explanation colour in the blend (default: %(default)s)")
    parser.add_argument("--workers", type=_positive_int, default=2, help="rendering processes (1: render in this process) (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bundle folder")
    parser.add_argument("--allow-unselective", action="store_true",
                        help="build from explanations their run judged not selective (mask over half the grid on "
                             "most images, hard accuracy far below soft, or a dead module); refused by default")


def render_settings(args: argparse.Namespace) -> RenderSettings:
    """The drawing the render flags ask for (GenerationError for an unusable one)."""
    return RenderSettings(style=args.style, size=args.size, upscale=args.upscale, image_resample=args.image_resample,
                          colormap=args.colormap, alpha=args.alpha)


def _run_build(args: argparse.Namespace, argv: Sequence[str]) -> int:
    render = render_settings(args)
    options = BuildOptions(
        explanation_files=tuple(args.explanations), out=args.out,
        question_types=tuple(args.question_types) if args.question_types else None,
        compare=tuple(args.compare), design=args.design, controls=args.controls,
        per_type=args.per_type, seed=args.seed, include_misclassified=args.include_misclassified,
        titles=dict(args.title), dataset_tasks=dict(args.dataset_tasks), render=render, overwrite=args.overwrite,
        workers=args.workers, argv=tuple(argv), allow_unselective=args.allow_unselective,
    )
    result = build_bundle(options, progress=True)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    manifest = result.manifest
    types = ", ".join(manifest["generator"]["options"]["question_types"])
    datasets = ", ".join(d["key"] for d in manifest["datasets"])
    print(f"wrote {len(manifest['pairs'])} pairs ({result.stimulus_count} stimuli) of {types} for {datasets} "
          f"to {result.bundle} (bundle {manifest['bundle_id']}, style {render.style})")
    return 0


def _run_preview(args: argparse.Namespace) -> int:
    rows = write_contact_sheet(args.bundle, args.out, args.thumb, args.max_pairs)
    noun = entries_field(bundle_task(load_manifest(args.bundle)))
    print(f"wrote a contact sheet of {rows} {noun} from {args.bundle} to {args.out}")
    return 0


def _run_validate(args: argparse.Namespace) -> int:
    problems = validate_bundle(args.bundle)
    if not problems:
        print(f"{args.bundle}: bundle is valid")
        return 0
    for problem in problems[:MAX_LISTED_PROBLEMS]:
        print(problem)
    if len(problems) > MAX_LISTED_PROBLEMS:
        print(f"… and {len(problems) - MAX_LISTED_PROBLEMS} more")
    print(f"{args.bundle}: {len(problems)} problem(s) found", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; user mistakes print one sentence and return 2, invalid bundles return 1."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        if args.command in ("build", "preview", "usefulness"):
            _create_parent(args.out)
        if args.command == "build":
            return _run_build(args, argv)
        if args.command == "preview":
            return _run_preview(args)
        if args.command == "import-maps":
            return import_maps.run(args)
        if args.command == "usefulness":
            return _run_usefulness(args, argv)
        return _run_validate(args)
    except GenerationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
