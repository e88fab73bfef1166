"""Command line: ``python -m bla_core {train,experiment,explain,faithfulness,datasets} …`` (``--help`` on each).

Runs under ``torchrun --nproc_per_node N -m bla_core …`` too: feature extraction and experiment runs
are then shared between the N processes.
"""
from __future__ import annotations

import os

# Before anything imports huggingface_hub: never reach the network unless the user allows it.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "5")
os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from . import distributed  # noqa: E402
from .config import TrainConfig  # noqa: E402
from .devices import resolve_device  # noqa: E402
from .errors import BLAError  # noqa: E402
from .faithfulness import FILLS  # noqa: E402
from .l2x import TRAINING_POOLINGS  # noqa: E402
from .liveness import BLA_STARTS  # noqa: E402
from .methods import BASELINE, POSTHOC, explanation_keys, keys, trained_keys  # noqa: E402


def training_options() -> argparse.ArgumentParser:
    """Options shared by ``train`` and ``experiment`` (defaults: paper §4.1)."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("training")
    group.add_argument("--dataset", default="mnist38",
                       help="dataset spec: mnist38, imagefolder:PATH, catsdogs:PATH, stanforddogs:PATH or cub:PATH "
                            "(default: %(default)s)")
    group.add_argument("--backbone", default=None,
                       help="mnist_cnn or any timm model name (default: mnist_cnn for mnist38; efficientnet_b0 for "
                            "photos when its hub weights are available, else tf_efficientnet_lite0 --weights bundled)")
    group.add_argument("--weights", default=None,
                       help="timm backbone weights: hub (default; the local hub cache when offline), bundled "
                            "(tf_efficientnet_lite0 only), none (random), or a .safetensors / torch checkpoint PATH")
    group.add_argument("--epochs", type=int, default=None,
                       help="epochs of every model (default: the dataset's — 2 catsdogs, 5 others; mnist38 the paper's "
                            "1,125 steps of §4.1, 45 epochs of its 800 digits at batch 32)")
    group.add_argument("--baseline-epochs", type=int, default=None, help="epochs of the baseline (default: --epochs)")
    group.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default: %(default)s)")
    group.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: %(default)s)")
    group.add_argument("--theta", type=float, default=0.1, help="BLA temperature θ (default: %(default)s)")
    group.add_argument("--gamma-factor", type=float, default=None,
                       help="BLA-T threshold γ = factor / (h·w) (default: 0.98, the authors' code)")
    group.add_argument("--k", type=int, default=8, help="positions selected by L2X-F (default: %(default)s)")
    group.add_argument("--tau", type=float, default=0.1,
                       help="L2X-F concrete factor τ, multiplying the noisy logits (default: %(default)s)")
    group.add_argument("--l2x-pooling", default="sum", choices=TRAINING_POOLINGS,
                       help="L2X-F training pooling of the relaxed mask g: sum Σ g_i f_i as the authors, or mean "
                            "Σ g_i f_i / Σ g_i (default: %(default)s)")
    group.add_argument("--bla-start", default=None, choices=BLA_STARTS,
                       help="start of the BLA modules' 1×1 convolution: centred (θ·g at unit SD, half the logits at "
                            "the bound), small (the same at SD 0.1) or paper (Glorot, zero bias) (default: centred "
                            "end to end, small on frozen features; README, 'Dead explanation modules')")
    group.add_argument("--data-seed", type=int, default=0, help="seed of the train/validation split (default: %(default)s)")
    group.add_argument("--val-fraction", type=float, default=0.2, help="validation share (default: %(default)s)")
    group.add_argument("--cache-dtype", default="float16", choices=("float16", "float32"),
                       help="storage of the cached frozen features (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda (default: %(default)s)")
    return parser


def config_from(args: argparse.Namespace, method: str, seed: int) -> TrainConfig:
    return TrainConfig(
        dataset=args.dataset, method=method, seed=seed, data_seed=args.data_seed, val_fraction=args.val_fraction,
        backbone=args.backbone, weights=args.weights, epochs=args.epochs, baseline_epochs=args.baseline_epochs,
        batch_size=args.batch_size, lr=args.lr, theta=args.theta, gamma_factor=args.gamma_factor, k=args.k, tau=args.tau,
        l2x_pooling=args.l2x_pooling, bla_start=args.bla_start, cache_dtype=args.cache_dtype,
    )


def cmd_train(args: argparse.Namespace) -> str:
    from .training import train_run

    metrics = train_run(config_from(args, args.method, args.seed), Path(args.out), resolve_device(args.device),
                        Path(args.baseline) if args.baseline else None)
    if metrics is None:
        return ""
    # an unselective (or dead) run has already said so on stderr (bla_core/selectivity.py)
    return (f"{args.method}: hard accuracy {metrics.accuracy:.4f}, loss {metrics.loss:.4f}, explanation size mean "
            f"{metrics.mean_explanation_size:.1f} / median {metrics.median_explanation_size:g} of "
            f"{metrics.grid_cells} cells ({metrics.mean_explanation_share:.0%}) — wrote {args.out}/checkpoint.pt "
            "and metrics.json")


def cmd_experiment(args: argparse.Namespace) -> str:
    from .experiment import parse_methods, run_experiment, run_experiments

    methods = parse_methods(args.methods)
    base = config_from(args, BASELINE, args.first_seed)
    if args.datasets:
        specs = [spec.strip() for spec in args.datasets.split(",") if spec.strip()]
        results = run_experiments(base, specs, methods, args.runs, Path(args.out), resolve_device(args.device),
                                  args.first_seed)
        return (f"{sum(map(len, results.values()))} models on {len(results)} datasets over {args.runs} "
                f"runs — wrote {args.out}/<dataset>/results.csv and {args.out}/table1.md, table1.csv, figure3.png")
    results = run_experiment(base, methods, args.runs, Path(args.out), resolve_device(args.device), args.first_seed)
    return (f"{len(results)} models over {args.runs} runs — wrote {args.out}/results.csv, summary.md, "
            "table1.md, table1.csv, figure3.png")


def cmd_faithfulness(args: argparse.Namespace) -> str:
    from .faithfulness import faithfulness

    table = faithfulness([Path(r) for r in args.run], Path(args.out), resolve_device(args.device), args.images,
                         args.samples, args.seed, args.fill)
    return f"LIME faithfulness of {len(args.run)} run(s) — wrote {table}, faithfulness.csv"


def cmd_datasets_check(args: argparse.Namespace) -> str:
    from .datasets import describe, load_dataset

    splits = load_dataset(args.spec, args.data_seed, args.val_fraction)
    print(describe(splits, args.spec))
    return (f"{args.spec}: {len(splits.class_names)} classes, {len(splits.train)} train + {len(splits.val)} val "
            f"images usable, {len(splits.skipped)} unreadable files skipped")


def cmd_explain(args: argparse.Namespace) -> str:
    from .explain import explain_run

    out = explain_run(Path(args.run), args.split, Path(args.out), resolve_device(args.device), args.method,
                      top_k=args.top_k)
    return f"wrote {out}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bla_core", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", parents=[training_options()], help="train one model",
                                description="Train the baseline or an explanation model; writes checkpoint.pt and metrics.json.")
    train.add_argument("--method", required=True, help=", ".join(trained_keys()))
    train.add_argument("--seed", type=int, default=0, help="training seed (default: %(default)s)")
    train.add_argument("--baseline", default=None, help="a baseline run folder to start from (default: train one into OUT/baseline)")
    train.add_argument("--out", required=True, help="output folder")
    train.set_defaults(handler=cmd_train)

    experiment = commands.add_parser("experiment", parents=[training_options()], help="repeated runs with statistics",
                                     description="Repeat the baseline and each method over seeds; writes results.csv, "
                                                 "summary.md and figure3.png; resumes when run again.")
    experiment.add_argument("--methods", default=",".join(trained_keys()),
                            help="comma-separated (default: every trainable method, "
                                 "%(default)s; the built-in ones are the §4.2 protocol)")
    experiment.add_argument("--datasets", default=None,
                            help="comma-separated dataset specs run one after another into OUT/<dataset>/, with one "
                                 "combined Table 1 and Figure 3 in OUT (replaces --dataset)")
    experiment.add_argument("--runs", type=int, default=20, help="number of runs (default: %(default)s)")
    experiment.add_argument("--first-seed", type=int, default=0, help="seed of run 0; run r uses first+r (default: %(default)s)")
    experiment.add_argument("--out", required=True, help="output folder")
    experiment.set_defaults(handler=cmd_experiment)

    explain = commands.add_parser("explain", help="write an explanations file",
                                  description="Explain a split with a trained run and write the explanations file "
                                              "(its fields: docs/formats.md, 'Explanations file').")
    explain.add_argument("--run", required=True, help="run folder (holds checkpoint.pt)")
    explain.add_argument("--split", default="val", choices=("train", "val"), help="split (default: %(default)s)")
    explain.add_argument("--method", default=None, choices=explanation_keys(),
                         help="default: the run's own method; cam for a baseline run. Post-hoc: "
                              + ", ".join(keys(lambda m: m.kind == POSTHOC)))
    explain.add_argument("--out", required=True, help="output .npz file")
    explain.add_argument("--top-k", type=int, default=None, metavar="K",
                         help="also write the maps explaining each of the model's K best classes (class_ids, "
                              "class_maps; the usefulness tasks' panels); default: min(classes, 4), 0: none")
    explain.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    explain.set_defaults(handler=cmd_explain)

    faith = commands.add_parser(
        "faithfulness", help="LIME faithfulness of BLA-T and CAM (Table 2)",
        description="Paper §4.3: LIME scores of the baseline on the 7×7 grid of 32×32 patches from random occlusion "
                    "patterns fitted by least squares; mean Spearman rank correlation with the BLA-T soft explanation "
                    "and with CAM. Writes table2.md and faithfulness.csv (one row per image).")
    faith.add_argument("--run", action="append", required=True,
                       help="a folder holding baseline/ and bla_t/ (an experiment's runs/run-000); repeat once per dataset")
    faith.add_argument("--samples", type=int, default=1000, help="occlusion patterns per image (default: %(default)s)")
    faith.add_argument("--images", type=int, default=100,
                       help="validation images drawn by --seed, 0 for all (default: %(default)s)")
    faith.add_argument("--fill", default="black", choices=FILLS,
                       help="hidden patches show black (the paper's §4.3), the backbone's normalisation mean colour, "
                            "or the patch's own mean (default: %(default)s)")
    faith.add_argument("--seed", type=int, default=0, help="seed of image choice and patterns (default: %(default)s)")
    faith.add_argument("--out", required=True, help="output folder")
    faith.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    faith.set_defaults(handler=cmd_faithfulness)

    datasets = commands.add_parser("datasets", help="inspect datasets",
                                   description="Inspect a dataset before training on it.")
    datasets_commands = datasets.add_subparsers(dest="datasets_command", required=True)
    check = datasets_commands.add_parser(
        "check", help="classes, counts per split and unreadable files",
        description="Load a dataset spec as training would and report its classes, the images per class in "
                    "each split and every file that could not be read (those are skipped by training).")
    check.add_argument("spec", help="dataset spec, e.g. catsdogs:/data/PetImages")
    check.add_argument("--data-seed", type=int, default=0, help="seed of the train/validation split (default: %(default)s)")
    check.add_argument("--val-fraction", type=float, default=0.2, help="validation share (default: %(default)s)")
    check.set_defaults(handler=cmd_datasets_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        device = distributed.init_from_environment()
        if device is not None and getattr(args, "device", "auto") == "auto":
            args.device = str(device)  # each torchrun process on its own GPU
        if distributed.is_main() or args.handler in (cmd_train, cmd_experiment):
            summary = args.handler(args)
            if distributed.is_main():
                print(summary)
    except BLAError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        distributed.shutdown()
    return 0
