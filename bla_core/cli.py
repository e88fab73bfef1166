"""Command line: ``python -m bla_core {train,experiment,explain} …`` (``--help`` on each)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import BLAError
from .training import TrainConfig, resolve_device

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def training_options() -> argparse.ArgumentParser:
    """Options shared by ``train`` and ``experiment`` (defaults: paper §4.1)."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("training")
    group.add_argument("--dataset", default="mnist38", help="dataset spec, e.g. mnist38 (default: %(default)s)")
    group.add_argument("--backbone", default=None, help="feature extractor (default: the dataset's, mnist_cnn for mnist38)")
    group.add_argument("--weights", default=None, help="pretrained weights of the backbone")
    group.add_argument("--epochs", type=int, default=3, help="epochs of every model (default: %(default)s)")
    group.add_argument("--baseline-epochs", type=int, default=None, help="epochs of the baseline (default: --epochs)")
    group.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default: %(default)s)")
    group.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: %(default)s)")
    group.add_argument("--theta", type=float, default=0.1, help="BLA temperature θ (default: %(default)s)")
    group.add_argument("--gamma-factor", type=float, default=None,
                       help="BLA-T threshold γ = factor / (h·w) (default: the dataset's, 1 for mnist38)")
    group.add_argument("--k", type=int, default=8, help="positions selected by L2X-F (default: %(default)s)")
    group.add_argument("--tau", type=float, default=0.1, help="L2X-F concrete factor τ (default: %(default)s)")
    group.add_argument("--data-seed", type=int, default=0, help="seed of the train/validation split (default: %(default)s)")
    group.add_argument("--val-fraction", type=float, default=0.2, help="validation share (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda (default: %(default)s)")
    return parser


def config_from(args: argparse.Namespace, method: str, seed: int) -> TrainConfig:
    return TrainConfig(
        dataset=args.dataset, method=method, seed=seed, data_seed=args.data_seed, val_fraction=args.val_fraction,
        backbone=args.backbone, weights=args.weights, epochs=args.epochs, baseline_epochs=args.baseline_epochs,
        batch_size=args.batch_size, lr=args.lr, theta=args.theta, gamma_factor=args.gamma_factor, k=args.k, tau=args.tau,
    )


def cmd_train(args: argparse.Namespace) -> str:
    from .training import train_run

    metrics = train_run(config_from(args, args.method, args.seed), Path(args.out), resolve_device(args.device),
                        Path(args.baseline) if args.baseline else None)
    return (f"{args.method}: hard accuracy {metrics.accuracy:.4f}, loss {metrics.loss:.4f}, "
            f"mean explanation size {metrics.mean_explanation_size:.1f} — wrote {args.out}/checkpoint.pt and metrics.json")


def cmd_experiment(args: argparse.Namespace) -> str:
    from .experiment import parse_methods, run_experiment

    methods = parse_methods(args.methods)
    results = run_experiment(config_from(args, "baseline", args.first_seed), methods, args.runs, Path(args.out),
                             resolve_device(args.device), args.first_seed)
    return f"{len(results)} models over {args.runs} runs — wrote {args.out}/results.csv, summary.md, figure3.png"


def cmd_explain(args: argparse.Namespace) -> str:
    from .explain import explain_run

    out = explain_run(Path(args.run), args.split, Path(args.out), resolve_device(args.device), args.method)
    return f"wrote {out}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bla_core", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", parents=[training_options()], help="train one model",
                                description="Train the baseline or an explanation model; writes checkpoint.pt and metrics.json.")
    train.add_argument("--method", required=True, help="baseline, bla, bla_t, bla_ph or l2x_f")
    train.add_argument("--seed", type=int, default=0, help="training seed (default: %(default)s)")
    train.add_argument("--baseline", default=None, help="a baseline run folder to start from (default: train one into OUT/baseline)")
    train.add_argument("--out", required=True, help="output folder")
    train.set_defaults(handler=cmd_train)

    experiment = commands.add_parser("experiment", parents=[training_options()], help="repeated runs with statistics",
                                     description="Repeat the baseline and each method over seeds; writes results.csv, "
                                                 "summary.md and figure3.png; resumes when run again.")
    experiment.add_argument("--methods", default="baseline,bla,bla_t,l2x_f", help="comma-separated (default: %(default)s)")
    experiment.add_argument("--runs", type=int, default=20, help="number of runs (default: %(default)s)")
    experiment.add_argument("--first-seed", type=int, default=0, help="seed of run 0; run r uses first+r (default: %(default)s)")
    experiment.add_argument("--out", required=True, help="output folder")
    experiment.set_defaults(handler=cmd_experiment)

    explain = commands.add_parser("explain", help="write an explanations file",
                                  description="Explain a split with a trained run and write the DESIGN.md explanations file.")
    explain.add_argument("--run", required=True, help="run folder (holds checkpoint.pt)")
    explain.add_argument("--split", default="val", choices=("train", "val"), help="split (default: %(default)s)")
    explain.add_argument("--method", default=None, choices=("bla", "bla_t", "bla_ph", "l2x_f", "cam", "grad_cam"),
                         help="default: the run's own method; cam for a baseline run")
    explain.add_argument("--out", required=True, help="output .npz file")
    explain.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    explain.set_defaults(handler=cmd_explain)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        print(args.handler(args))
    except BLAError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
