"""The `cgpa` command line: one subcommand per step of the pipeline (see docs/DESIGN.md).

Each subcommand parses its arguments and calls one function of the packages; user
mistakes (bad data, a missing or stale model, bad grades) print one readable line and
exit with status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys

from data import load_cohort
from data.errors import UserError


def _cohort(args):
    if args.synthetic is not None:
        print(f"--synthetic: using the SYNTHETIC cohort (seed {args.synthetic_seed}, "
              f"{args.synthetic} generated students, not real ones)", file=sys.stderr)
    semesters = [s.strip() for s in args.semesters.split(",")] if args.semesters else None
    return load_cohort(args.data, semesters, args.synthetic, args.synthetic_seed)


def _command_line() -> str:
    return " ".join(["cgpa"] + sys.argv[1:])


def cmd_data(args) -> None:
    from data.cohort import format_summary, summary

    info = summary(_cohort(args))
    print(json.dumps(info, indent=2) if args.json else format_summary(info))


def _train_config(args):
    from model.network import ModelConfig
    from model.train import TrainConfig

    model = ModelConfig(cell=args.cell, hidden=args.hidden, layers=args.layers, dropout=args.dropout,
                        ensemble=args.ensemble, linear_skip=not args.no_linear_skip)
    config = TrainConfig(model=model, seed=args.seed, max_epochs=args.epochs, learning_rate=args.lr,
                         batch_size=args.batch_size)
    if args.weight_decay is not None:
        config.weight_decay, config.tune_weight_decay = args.weight_decay, ()
    return config


def cmd_train(args) -> None:
    from model.card import write_model_card
    from model.run import train_run

    cohort = _cohort(args)
    config = _train_config(args)
    print(f"training on {cohort.describe_source()}\nconfig:\n{config}")
    metrics = train_run(cohort, config, args.out, progress=not args.quiet, command=_command_line())
    write_model_card(args.out)
    for target, entry in metrics["test"].items():
        print(f"held-out {target:>4}: model MAE {entry['model']['mae']:.4f} "
              f"(coverage {entry['model']['coverage80']:.2f}), ridge {entry['ridge']['mae']:.4f}, "
              f"persistence {entry['persistence']['mae']:.4f}")
    print(f"chosen weight decay {metrics['tuning']['chosen_weight_decay']}; "
          f"trained in {metrics['train_seconds']} s; wrote {args.out}/model.pt")


def cmd_evaluate(args) -> None:
    from model.card import write_model_card
    from model.evaluate import evaluate, format_report
    from model.network import CELLS

    cells = tuple(c.strip() for c in args.cells.split(",")) if args.cells else None
    unknown = sorted(set(cells or ()) - set(CELLS))
    if unknown:
        raise UserError(f"--cells: unknown cell(s) {', '.join(unknown)}; valid cells: {', '.join(CELLS)}")
    cohort = _cohort(args)
    report = evaluate(cohort, _train_config(args), args.out, args.folds, args.repeats,
                      **({"cells": cells} if cells else {}), progress=not args.quiet, command=_command_line())
    print(format_report(report))
    write_model_card(args.out)


def cmd_export(args) -> None:
    from export.onnx_export import export_onnx, quantize
    from data import recorded_cohort
    from export.verify import parity_inputs
    from model.card import write_model_card

    path = export_onnx(args.run)
    print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KB)")
    if args.quantize:
        from export.torch_predictor import TorchPredictor

        reference = TorchPredictor(args.run)
        cohort = recorded_cohort(reference.payload["data"]["source"])
        grades, college, _ = parity_inputs(cohort, reference.semesters, reference.colleges, 2000)
        report = quantize(args.run, (grades, college))
        if report["written"]:
            print(f"wrote int8 model: {report['int8_bytes'] / 1024:.1f} KB vs fp32 {report['fp32_bytes'] / 1024:.1f} KB; "
                  f"prediction change vs fp32 max {report['max_abs_change']:.4f}, mean {report['mean_abs_change']:.4f} "
                  f"grade points over {report['samples']} inputs")
        else:
            change = (f" (its predictions moved by at most {report['max_abs_change']:.4f} grade points)"
                      if "max_abs_change" in report else "")
            print(f"no int8 model written: {report['reason']}{change}")
        if report.get("float_recurrent_ops"):
            print(f"onnxruntime has no int8 kernel for {', '.join(report['float_recurrent_ops'])}: those nodes stay fp32")
    write_model_card(args.run)


def cmd_verify(args) -> int:
    from export.verify import format_parity, verify
    from model.card import write_model_card

    report = verify(args.run, samples=args.samples, data=args.data)
    print(format_parity(report))
    write_model_card(args.run)
    return 0 if report["passed"] else 1


def cmd_bench(args) -> None:
    from export.bench import bench, format_bench
    from model.card import write_model_card

    print(format_bench(bench(args.run, calls=args.calls, batch=args.batch)))
    write_model_card(args.run)


def cmd_predict(args) -> int:
    from export.predictor import check_fresh

    backends = {}
    if args.backend in ("torch", "both"):
        from export.torch_predictor import TorchPredictor

        backends["torch"] = TorchPredictor(args.run)
    if args.backend in ("onnx", "both"):
        backends["onnx"] = check_fresh(args.run)
    if args.csv:
        from export.batch import score_csv, write_scored_csv

        if not args.out:
            raise UserError("--csv needs --out FILE for the scored rows")
        scored = score_csv(args.csv, backends)
        write_scored_csv(scored, args.out)
        failed = int((scored["error"] != "").sum())
        print(f"scored {len(scored) - failed} of {len(scored)} rows into {args.out}; {failed} with an error")
        return 0
    if args.grades is None or args.college is None:
        raise UserError("give --grades \"7.1,6.8,,7.3\" and --college CODE, or --csv IN --out OUT")
    for name, backend in backends.items():
        result = backend.predict(args.grades, args.college)
        note = "" if backend.is_known_college(args.college) else " (college not seen in training)"
        print(f"{name}: semester {result.semester}: {result.prediction:.3f} "
              f"(80% interval {result.low:.2f}-{result.high:.2f}){note}")
    return 0


def cmd_demo(args) -> None:
    from demo.app import main as demo_main

    demo_main(args.run, port=args.port, rebuild=args.rebuild)


def _add_data_arguments(parser) -> None:
    from data import SyntheticSpec

    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", help="results CSV (default: the real data set shipped in data/)")
    source.add_argument("--synthetic", type=int, nargs="?", const=SyntheticSpec.students, metavar="N",
                        help=f"use N generated students instead (default N: {SyntheticSpec.students}), "
                             "labelled SYNTHETIC everywhere")
    parser.add_argument("--synthetic-seed", type=int, default=SyntheticSpec.seed)
    parser.add_argument("--semesters", help="comma-separated semester column names, in order")


def _add_train_arguments(parser) -> None:
    from model.network import CELLS

    parser.add_argument("--cell", choices=CELLS, default="elman")
    parser.add_argument("--hidden", type=int, default=8)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--ensemble", type=int, default=2, help="networks averaged, each with its own seed")
    parser.add_argument("--no-linear-skip", action="store_true", help="drop the autoregressive path (ablation)")
    parser.add_argument("--epochs", type=int, default=400, help="at most; early stopping usually ends sooner")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--weight-decay", type=float, help="fix it instead of tuning it on validation students")
    parser.add_argument("--batch-size", type=int, default=0, help="0: the whole training set per step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cgpa", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="load a cohort and print its summary")
    _add_data_arguments(data)
    data.add_argument("--json", action="store_true")
    data.set_defaults(run_command=cmd_data)

    train = commands.add_parser("train", help="train a model into a run directory")
    _add_data_arguments(train)
    _add_train_arguments(train)
    train.add_argument("--out", required=True, help="run directory")
    train.set_defaults(run_command=cmd_train)

    evaluate = commands.add_parser("evaluate", help="repeated student-level cross-validation")
    _add_data_arguments(evaluate)
    _add_train_arguments(evaluate)
    evaluate.add_argument("--folds", type=int, default=5)
    evaluate.add_argument("--repeats", type=int, default=3)
    evaluate.add_argument("--cells", help="comma-separated subset of the cells (default: all)")
    evaluate.add_argument("--out", required=True)
    evaluate.set_defaults(run_command=cmd_evaluate)

    export = commands.add_parser("export", help="write DIR/model.onnx from DIR/model.pt")
    export.add_argument("run", help="run directory")
    export.add_argument("--quantize", action="store_true", help="also write an int8 model where it helps")
    export.set_defaults(run_command=cmd_export)

    verify = commands.add_parser("verify", help="check model.onnx against model.pt; exit 1 on a mismatch")
    verify.add_argument("run")
    verify.add_argument("--samples", type=int, default=10_000, help="random students besides the training data")
    verify.add_argument("--data", help="the training CSV, when it is not the shipped data set")
    verify.set_defaults(run_command=cmd_verify)

    bench = commands.add_parser("bench", help="torch vs onnxruntime latency, throughput and size")
    bench.add_argument("run")
    bench.add_argument("--calls", type=int, default=3000)
    bench.add_argument("--batch", type=int, default=4096)
    bench.set_defaults(run_command=cmd_bench)

    predict = commands.add_parser("predict", help="predict one student or score a CSV")
    predict.add_argument("run")
    predict.add_argument("--backend", choices=("torch", "onnx", "both"), default="both")
    predict.add_argument("--grades", help='comma-separated, blank for missing: "7.1,6.8,,7.3"')
    predict.add_argument("--college", help="college code")
    predict.add_argument("--csv", help="a CSV in the data format")
    predict.add_argument("--out", help="where to write the scored CSV")
    predict.set_defaults(run_command=cmd_predict)

    demo = commands.add_parser("demo", help="serve the Gradio demo (same as python -m demo)")
    demo.add_argument("run", nargs="?", help="run directory (default: the shipped model)")
    demo.add_argument("--port", type=int, default=7860)
    demo.add_argument("--rebuild", action="store_true", help="train, export and verify first")
    demo.set_defaults(run_command=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run_command(args) or 0
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
