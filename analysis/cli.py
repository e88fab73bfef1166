"""Command line: ``python -m analysis report`` turns an export into the preference report;
``python -m analysis usefulness`` a usefulness export into its report (analysis.usefulness);
``python -m analysis plan`` finds the participants a study needs (analysis.planning)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from analysis import planning
from analysis.io import InputError
from analysis.percentages import DEFAULT_DECIMALS
from analysis.quality import DEFAULT_SPEEDER_MS, DEFAULT_STRAIGHT_LINE_SHARE, QualityThresholds
from analysis.report import ReportOptions, build_report
from analysis.selection import DEFAULT_MAX_FAILED_CHECKS
from analysis.statistics import DEFAULT_BOOTSTRAP, DEFAULT_CONFIDENCE
from analysis.usefulness_report import UsefulnessOptions, build_usefulness_report

REPORT_STAGES = 4


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with its ``report`` subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Analyse the answers of a BLA Study export (answers.csv, participants.csv).",
        epilog="The export's columns: docs/formats.md.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    report = commands.add_parser(
        "report", help="comparisons.csv, ranking.csv, preferences.csv/.md, "
                       "participants_quality.csv, figures (PNG, SVG) and report.html",
        description="Write the preference report: comparisons.csv and ranking.csv "
                    "(Bradley-Terry with ties) with comparisons.md for any comparisons of "
                    "methods; the paper's preferences.csv and .md and Figures 4 and 7 for "
                    "BLA-T comparisons; participants_quality.csv, Figures 8-11, two "
                    "data-quality figures, the ranking and the preference matrix as PNG and "
                    "SVG, and a self-contained report.html.")
    source = report.add_argument_group("input (either --export-dir or both files)")
    source.add_argument("--export-dir", type=Path, metavar="DIR",
                        help="folder holding answers.csv and participants.csv")
    source.add_argument("--answers", type=Path, metavar="CSV", help="answers.csv of the export")
    source.add_argument("--participants", type=Path, metavar="CSV",
                        help="participants.csv of the export")
    report.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="folder to write the report into (created if missing)")
    _add_who_counts(report, "answers")
    flags = report.add_argument_group("data-quality flags (they inform, they leave nobody out)")
    flags.add_argument("--speeder-ms", type=_non_negative, default=DEFAULT_SPEEDER_MS,
                       metavar="MS", help="flag a median response time below MS milliseconds "
                                          f"(default {DEFAULT_SPEEDER_MS:g})")
    flags.add_argument("--straight-line-share", type=_share, default=DEFAULT_STRAIGHT_LINE_SHARE,
                       metavar="SHARE", help="flag one choice for at least this share of a "
                                             "participant's answers "
                                             f"(default {DEFAULT_STRAIGHT_LINE_SHARE:g})")
    numbers = _add_statistics(report, "cluster bootstrap replicates")
    numbers.add_argument("--decimals", type=_decimals, default=DEFAULT_DECIMALS,
                         help="decimal places of percentages, rounded half to even "
                              f"(default {DEFAULT_DECIMALS})")
    report.add_argument("--dataset-label", action="append", default=[], metavar="KEY=NAME",
                        type=_label, help="name a dataset in tables and figures, e.g. "
                                          "--dataset-label cats_dogs='Cats vs dogs' (repeatable)")
    report.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_plan_parser(commands)
    _add_usefulness_parser(commands)
    return parser


def _add_who_counts(command: argparse.ArgumentParser, counted: str) -> None:
    """The inclusion flags of analysis.selection.select, shared by ``report`` and
    ``usefulness`` (``counted``: what a participant gave, answers or trials)."""
    who = command.add_argument_group(
        "who counts (default: completed, non-simulated, no failed attention check)")
    who.add_argument("--include-incomplete", action="store_true",
                     help=f"also count {counted} of participants who did not finish")
    who.add_argument("--include-excluded", action="store_true",
                     help="also count participants the researcher excluded")
    who.add_argument("--include-simulated", action="store_true",
                     help="also count simulated (bot) participants")
    who.add_argument("--max-failed-checks", type=_count, default=None,
                     metavar="N", help="leave out participants who failed more than N "
                                       "attention checks (default: the study's max_failed_checks "
                                       "in export_manifest.json, else "
                                       f"{DEFAULT_MAX_FAILED_CHECKS})")
    who.add_argument("--keep-inattentive", action="store_true",
                     help="count participants whatever attention checks they failed")


def _inclusion(args: argparse.Namespace) -> dict[str, bool | int | None]:
    """The parsed inclusion flags as keyword arguments of the options dataclasses."""
    return {name: getattr(args, name) for name in (
        "include_incomplete", "include_excluded", "include_simulated", "keep_inattentive",
        "max_failed_checks")}


def _add_statistics(command: argparse.ArgumentParser,
                    replicates: str) -> argparse._ArgumentGroup:
    """The ``statistics`` group: --bootstrap (``replicates`` says what N counts), --seed and
    --confidence; returned so a command can add its own."""
    numbers = command.add_argument_group("statistics")
    numbers.add_argument("--bootstrap", type=_positive_int, default=DEFAULT_BOOTSTRAP,
                         metavar="N", help=f"{replicates} (default {DEFAULT_BOOTSTRAP})")
    numbers.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    numbers.add_argument("--confidence", type=_confidence, default=DEFAULT_CONFIDENCE,
                         help=f"confidence level of the intervals (default {DEFAULT_CONFIDENCE})")
    return numbers


def _add_usefulness_parser(commands: argparse._SubParsersAction) -> None:
    """The ``usefulness`` subcommand: distinction, agreement and forward-simulation results."""
    useful = commands.add_parser(
        "usefulness", help="usefulness.csv/.md, figures (PNG, SVG) and usefulness.html of a "
                           "usefulness study (trials.csv)",
        description="Write the usefulness report of a distinction, agreement or forward-"
                    "simulation export: per method the share of answers matching the model "
                    "(against chance, split by model correct / incorrect), the share answering "
                    "'correct', forward-simulation gains and the comparison of each arm with the "
                    "control arm 'none', confidence when matching or not, all with "
                    "participant-cluster bootstrap intervals and Holm-adjusted participant-level "
                    "tests; with --preference-export, each method's Bradley-Terry preference "
                    "strength beside its usefulness (preference_usefulness.csv).")
    useful.add_argument("--export-dir", type=Path, required=True, metavar="DIR",
                        help="folder holding trials.csv and participants.csv")
    useful.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="folder to write the report into (created if missing)")
    useful.add_argument("--preference-export", type=Path, metavar="DIR",
                        help="a preference study's export (answers.csv, participants.csv) whose "
                             "ranking is set beside the usefulness scores")
    _add_who_counts(useful, "trials")
    _add_statistics(useful, "cluster bootstrap replicates and permutations")


def _usefulness(args: argparse.Namespace) -> int:
    """Run ``usefulness``: write the report; a user mistake prints one 'error:' line."""
    options = UsefulnessOptions(**_inclusion(args), n_boot=args.bootstrap, seed=args.seed,
                                confidence=args.confidence)
    try:
        result = build_usefulness_report(args.export_dir / "trials.csv",
                                         args.export_dir / "participants.csv", args.out, options,
                                         args.preference_export)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    people = result.selection.answers.groupby(["study", "participant"]).ngroups
    print(f"Wrote {', '.join(path.name for path in result.files)} for "
          f"{len(result.selection.answers)} answered trials of {people} participants "
          f"to {result.out_dir}")
    return 0


def _add_plan_parser(commands: argparse._SubParsersAction) -> None:
    """The ``plan`` subcommand: participants needed, by simulating the report's test."""
    plan = commands.add_parser(
        "plan", help="participants needed for a target power, by simulation",
        description="Simulate studies of a clustered paired-preference design, analyse each "
                    "with the report's participant-level sign-flip test and Holm over the "
                    "comparisons, and print the power curve (Wilson Monte-Carlo intervals), "
                    "the participants needed for each target power, the median interval width "
                    "of the share and the chance of a wrong sign when significant.")
    source = plan.add_argument_group("the design (a pilot export, or assumed values)")
    source.add_argument("--export-dir", type=Path, metavar="DIR",
                        help="pilot export: share, tie rate and participant heterogeneity of "
                             "each of its comparisons")
    source.add_argument("--share", type=_confidence, action="append", metavar="P",
                        help="true share of method 1 among decisive answers (repeat per "
                             "comparison)")
    source.add_argument("--comparisons", type=_positive_int, metavar="K",
                        help="comparisons in the Holm family (default: one per --share; a "
                             "single --share is used for all K)")
    source.add_argument("--tie-rate", type=_tie_rate, default=0.15,
                        help="share of 'equally reasonable' answers (default 0.15)")
    source.add_argument("--sigma", type=_non_negative, default=0.5,
                        help="SD of participants' logit preference (default 0.5)")
    plan.add_argument("--answers", type=_positive_int, metavar="N",
                      help="answers per participant and comparison (default: the pilot's median)")
    plan.add_argument("--alpha", type=_confidence, default=planning.DEFAULT_ALPHA,
                      help=f"significance level (default {planning.DEFAULT_ALPHA})")
    plan.add_argument("--power", type=_confidence, action="append", metavar="TARGET",
                      help="target power (repeatable; default 0.8 and 0.9)")
    plan.add_argument("--participants", type=_grid, default=planning.DEFAULT_GRID,
                      metavar="N,N,...", help="participant numbers to simulate (default "
                                              f"{','.join(map(str, planning.DEFAULT_GRID))})")
    plan.add_argument("--replays", type=_positive_int, default=planning.DEFAULT_REPLAYS,
                      help=f"simulated studies per participant number "
                           f"(default {planning.DEFAULT_REPLAYS})")
    plan.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    plan.add_argument("--out", type=Path, metavar="DIR",
                      help="also write power.csv, plan.md and power.png into DIR")


def _plan(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run ``plan``: print the power curve and the participants needed; write files with --out."""
    if (args.export_dir is None) == (args.share is None):
        parser.error("give either --export-dir (a pilot) or --share (assumed values)")
    if args.share and args.comparisons and len(args.share) not in (1, args.comparisons):
        parser.error("give one --share, or one per comparison")
    try:
        if args.export_dir is not None:
            design = planning.pilot_design(args.export_dir, args.answers, args.alpha)
        else:
            if args.answers is None:
                parser.error("give --answers with assumed values")
            shares = args.share * (args.comparisons or 1) if len(args.share) == 1 else args.share
            design = planning.Design(tuple(
                planning.ComparisonModel(f"comparison {k + 1}", share, args.tie_rate, args.sigma)
                for k, share in enumerate(shares)), args.answers, args.alpha)
        result = planning.plan(design, args.participants, args.replays, args.seed,
                               tuple(args.power or planning.DEFAULT_TARGETS))
    except planning.InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(planning.plan_markdown(result))
    if args.out is not None:
        paths = planning.write_plan(result, args.out)
        print(f"Wrote {', '.join(path.name for path in paths)} to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run a command; user mistakes print one 'error:' line and return 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "plan":
        return _plan(parser, args)
    if args.command == "usefulness":
        return _usefulness(args)
    answers, participants = _input_paths(parser, args)
    options = ReportOptions(
        **_inclusion(args),
        quality=QualityThresholds(args.speeder_ms, args.straight_line_share),
        n_boot=args.bootstrap, seed=args.seed,
        confidence=args.confidence, decimals=args.decimals,
        dataset_labels=dict(args.dataset_label))
    with tqdm(total=REPORT_STAGES, disable=args.quiet, unit="step", leave=False) as bar:
        started: list[str] = []

        def step(name: str) -> None:
            if started:
                bar.update(1)
            started.append(name)
            bar.set_description(name)
        try:
            result = build_report(answers, participants, args.out, options, step)
        except InputError as error:
            bar.close()
            print(f"error: {error}", file=sys.stderr)
            return 2
        bar.update(bar.total - bar.n)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    figures = sum(path.suffix in (".png", ".svg") for path in result.files)
    tables = ", ".join(path.name for path in result.files if path.suffix in (".csv", ".md"))
    print(f"Wrote report.html, {tables} and {figures} figure files "
          f"for {len(result.selection.answers)} answers of "
          f"{result.selection.answers.groupby(['study', 'participant']).ngroups} participants "
          f"to {result.out_dir}")
    return 0


def _input_paths(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[Path, Path]:
    """Resolve --export-dir or --answers/--participants into the two file paths."""
    if args.export_dir is not None:
        if args.answers or args.participants:
            parser.error("give either --export-dir or --answers and --participants, not both")
        return args.export_dir / "answers.csv", args.export_dir / "participants.csv"
    if args.answers is None or args.participants is None:
        parser.error("give --export-dir DIR, or both --answers CSV and --participants CSV")
    return args.answers, args.participants


def _number(text: str, kind: type) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def _count(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number 0 or above")
    return value


def _non_negative(text: str) -> float:
    value = _number(text, float)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number 0 or above")
    return value


def _share(text: str) -> float:
    value = _number(text, float)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not above 0 and at most 1")
    return value


def _confidence(text: str) -> float:
    value = _number(text, float)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 1")
    return value


def _tie_rate(text: str) -> float:
    value = _number(text, float)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not at least 0 and below 1")
    return value


def _grid(text: str) -> tuple[int, ...]:
    values = tuple(_number(part, int) for part in text.split(","))
    if min(values) < 2:
        raise argparse.ArgumentTypeError(f"{text!r} holds a participant number below 2")
    return values


def _decimals(text: str) -> int:
    value = _number(text, int)
    if not 0 <= value <= 6:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 6")
    return value


def _label(text: str) -> tuple[str, str]:
    key, sep, name = text.partition("=")
    if not sep or not key or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=NAME")
    return key, name
