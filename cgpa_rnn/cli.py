"""The `cgpa` command line: one subcommand per step of the pipeline (see docs/DESIGN.md).

Each subcommand parses its arguments and calls one function of the packages; user
mistakes (bad data, a missing or stale model, bad grades) print one readable line and
exit with status 2, never a traceback. A subcommand imports what it needs only when it
runs, so `cgpa --help` and `cgpa predict --backend onnx` work without torch installed, and
a command that needs an extra names it in one line. Every --out is checked before any work
(cgpa_rnn.paths: never an input, a symbolic link, a device or a folder of someone else's).
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys

from cgpa_rnn.errors import ParityError, UserError
from cgpa_rnn.extras import extra_needed, require
from cgpa_rnn.paths import check_output_file, check_output_folder
from cgpa_rnn.processes import stop_cleanly_on_sigterm


def _cohort(args):
    from cgpa_rnn.data import CohortFormat, load_cohort

    if args.synthetic is not None:
        print(f"--synthetic: using the SYNTHETIC {args.synthetic_kind} cohort (seed {args.synthetic_seed}, "
              f"{args.synthetic} generated students, not real ones)", file=sys.stderr)
        if args.semesters or args.scale or args.group or args.long:
            raise UserError("--semesters, --scale, --group and --long describe a --data file; the synthetic cohort "
                            "states its own")
    form = CohortFormat.parse(args.semesters, args.scale, args.group, args.long)
    if args.synthetic is None and args.synthetic_semesters is not None:
        raise UserError("--synthetic-semesters is for the --synthetic cohort; a --data file has its own semesters")
    return load_cohort(args.data, form, args.synthetic, args.synthetic_seed, args.synthetic_kind,
                       args.synthetic_semesters)


def _command_line() -> str:
    return " ".join(["cgpa"] + sys.argv[1:])


def _config_fields():
    from cgpa_rnn.model.config import ModelConfig, TrainConfig

    return [(ModelConfig, spec) for spec in dataclasses.fields(ModelConfig)] + \
           [(TrainConfig, spec) for spec in dataclasses.fields(TrainConfig) if spec.name != "model"]


def _train_config(args):
    """The config dataclasses' defaults, overridden by the options given on the command line."""
    from cgpa_rnn.model.config import ModelConfig, TrainConfig

    given = {spec.name: getattr(args, spec.name) for _, spec in _config_fields() if hasattr(args, spec.name)}
    if "weight_decay" in given and "tune_weight_decay" not in given:
        given["tune_weight_decay"] = ()  # a weight decay given is used as it is, not tuned
    model_names = {spec.name for spec in dataclasses.fields(ModelConfig)}
    model = ModelConfig(**{k: v for k, v in given.items() if k in model_names})
    return TrainConfig(model=model, **{k: v for k, v in given.items() if k not in model_names})


def cmd_data(args) -> None:
    from cgpa_rnn.data.cohort import format_summary, summary

    info = summary(_cohort(args))
    print(json.dumps(info, indent=2) if args.json else format_summary(info))


def _config_line(config) -> str:
    """The config in one line: the cell and what differs from the defaults (all of it is in config.json)."""
    changed = []
    for owner, spec in _config_fields():
        value = getattr(config.model if owner.__name__ == "ModelConfig" else config, spec.name)
        default = spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()
        if value != default and spec.name != "cell":
            shown = "/".join(map(str, value)) if isinstance(value, tuple) else value
            changed.append(f"{spec.name.replace('_', '-')} {shown or 'none'}")
    return f"{config.model.cell} cell; " + (", ".join(changed) if changed else "default settings")


def cmd_train(args) -> None:
    require("cgpa train", "train")
    from cgpa_rnn.data import check_trainable
    from cgpa_rnn.export import pipeline
    from cgpa_rnn.model.config import COVERAGE_KEY
    from cgpa_rnn.model.record import RunRecord

    check_output_folder(args.out)
    config = _train_config(args)
    cohort = _cohort(args)
    check_trainable(cohort)
    print(f"training on {cohort.describe_source()}: {_config_line(config)} (in full: {args.out}/config.json)")
    pipeline.train(cohort, config, args.out, _command_line(), console=not args.quiet)
    record = RunRecord.read(args.out)
    for target, scores in record.test.items():
        best = scores.best_baseline
        print(f"held-out {target:>4}: model MAE {scores.mae('model'):.4f} ({COVERAGE_KEY} "
              f"{scores.model[COVERAGE_KEY]:.2f}), best baseline {best} {scores.mae(best):.4f}")
    print(f"weight decay {record.chosen_weight_decay}; trained in {record.train_seconds} s; wrote {args.out}")


def cmd_evaluate(args) -> None:
    require("cgpa evaluate", "train")
    from cgpa_rnn.export import pipeline
    from cgpa_rnn.model.config import CELLS
    from cgpa_rnn.model.evaluate import format_report

    cells = tuple(c.strip() for c in args.cells.split(",")) if args.cells else CELLS
    unknown = sorted(set(cells) - set(CELLS))
    if unknown:
        raise UserError(f"--cells: unknown cell(s) {', '.join(unknown)}; valid cells: {', '.join(CELLS)}")
    check_output_folder(args.out)
    config = _train_config(args)
    cohort = _cohort(args)  # pipeline.evaluate checks it can be trained on before any fold runs
    given = {name: getattr(args, name) for name in ("folds", "repeats", "seeds") if hasattr(args, name)}
    report = pipeline.evaluate(cohort, config, args.out, cells=cells, command=_command_line(),
                               console=not args.quiet, **given)
    print(format_report(report))


def cmd_export(args) -> None:
    require("cgpa export", "train")
    from cgpa_rnn.export import pipeline

    exported = pipeline.export(args.run, quantize=args.quantize)
    why, vectors = exported.onnx.with_name("explain.onnx"), exported.onnx.with_name("vectors.json")
    print(f"wrote {exported.onnx} ({exported.onnx.stat().st_size / 1024:.1f} KB), {why.name} (the why of each "
          f"forecast and the rest of the degree, {why.stat().st_size / 1024:.1f} KB) and {vectors.name} beside it")
    if exported.quantization is not None:
        _print_quantization(exported.quantization)


def _print_quantization(report: dict) -> None:
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


def cmd_verify(args) -> int:
    require("cgpa verify", "train")
    from cgpa_rnn.export import pipeline
    from cgpa_rnn.export.verify import format_parity

    try:
        report = pipeline.verify(args.run, samples=args.samples, data=args.data)
    except ParityError as failed:
        report = failed.report
    print(format_parity(report))
    return 0 if report["passed"] else 1


def cmd_bench(args) -> None:
    if args.train_sizes is not None and not args.train:
        raise UserError("--train-sizes goes with --train")
    if args.train:
        if args.run is not None or args.demo or args.csv is not None or {"calls", "batch"} & set(vars(args)):
            raise UserError("--train measures `cgpa train` on generated cohorts: it takes no run directory, --demo, "
                            "--csv, --calls or --batch")
        from cgpa_rnn.model.train_bench import SIZES, format_train_bench, parse_sizes, train_bench

        sizes = parse_sizes(args.train_sizes) if args.train_sizes is not None else SIZES
        require("cgpa bench --train", "train")
        print(format_train_bench(train_bench(sizes)))
        return
    if args.run is None:
        raise UserError("cgpa bench needs a run directory (cgpa bench DIR); only --train measures without one")
    if args.demo:
        require("cgpa bench --demo", "demo")
        from cgpa_rnn.demo.bench import demo_bench, format_demo_bench

        print(format_demo_bench(demo_bench(args.run)))
        return
    if args.csv is not None:
        from cgpa_rnn.export.bench import csv_bench, format_csv_bench

        if args.csv < 1:
            raise UserError(f"--csv {args.csv}: expected a number of rows, at least 1")
        print(format_csv_bench(csv_bench(args.run, args.csv)))
        return
    require("cgpa bench", "train")
    from cgpa_rnn.export import pipeline
    from cgpa_rnn.export.bench import format_bench

    given = {name: getattr(args, name) for name in ("calls", "batch") if hasattr(args, name)}
    print(format_bench(pipeline.bench(args.run, **given)))


def _backends(run, choice: str | None, batch: bool = False) -> dict:
    from cgpa_rnn.predictor import check_fresh
    from cgpa_rnn.rundir import RunDir

    run = RunDir(run)
    if choice is None:  # one student: both where torch is installed; a CSV: onnxruntime, the serving runtime
        choice = "both" if not batch and importlib.util.find_spec("torch") is not None else "onnx"
    backends = {}
    if choice in ("torch", "both"):
        require("--backend torch", "train")
        from cgpa_rnn.model.torch_predictor import TorchPredictor

        backends["torch"] = TorchPredictor(run)
    if choice in ("onnx", "both"):
        backends["onnx"] = check_fresh(run)
    return backends


def cmd_predict(args) -> int:
    from cgpa_rnn.explanation import group_phrase
    from cgpa_rnn.scoring import served

    if args.csv and (args.explain or args.json):
        raise UserError("--explain and --json answer for one student (--grades); a CSV's rows get scored columns")
    if not args.trajectory and (args.at_risk_below is not None or args.credits is not None):
        raise UserError("--at-risk-below and --credits are about the final CGPA: add --trajectory")
    if args.csv:
        from cgpa_rnn.streaming import StreamResult, stream_scored_csv

        if not args.out:
            raise UserError("--csv needs --out FILE for the scored rows")
        check_output_file(args.out, (args.csv,), "the scored CSV")
        backends = _backends(args.run, args.backend, batch=True)
        if args.trajectory:  # before the file is read
            served(backends).risk_line(args.at_risk_below)
        if args.long or args.trajectory:  # widened whole, or every row's whole degree: not streamed
            from cgpa_rnn.scoring import HindcastSummary, score_csv, write_scored_csv
            from cgpa_rnn.table import LongLayout
            from cgpa_rnn.trajectory import credits_vector

            model = served(backends)
            scored = score_csv(args.csv, backends, hindcast_last_given=args.hindcast,
                               long=LongLayout.parse(args.long) if args.long else None, trajectory=args.trajectory,
                               below=args.at_risk_below, credits=credits_vector(args.credits, model.semesters))
            write_scored_csv(scored, args.out)
            result = StreamResult(len(scored.ok), int(scored.ok.sum()), HindcastSummary.of(scored),
                                  scored.warning(model))
            if args.trajectory:
                print(scored.risk_sentence())
        else:
            result = stream_scored_csv(args.csv, args.out, backends, hindcast_last_given=args.hindcast)
        if result.warning:
            print(result.warning, file=sys.stderr)
        print(f"scored {result.scored} of {result.rows} rows into {args.out}; {result.rows - result.scored} with "
              "an error")
        if result.hindcast:
            print(result.hindcast.text())
        if not result.scored:  # a script must not take a file of refusals for predictions
            print(f"error: no row of {args.csv} could be scored; each row's reason is in the error column of "
                  f"{args.out}", file=sys.stderr)
            return 1
        return 0
    if args.grades is None:
        raise UserError("give --grades \"7.1,6.8,,7.3\" and --college CODE, or --csv IN --out OUT")
    backends = _backends(args.run, args.backend)
    column = served(backends).groups.column
    if args.college is None and column is not None:
        raise UserError(f"give the student's {column} with --college (the model's group column)")
    warning = served(backends).unfamiliar(served(backends).question(args.grades, args.college).row)
    if warning:
        print(warning, file=sys.stderr)
    credits = None
    if args.trajectory:  # both options checked before anything is printed
        from cgpa_rnn.trajectory import credits_vector

        credits = credits_vector(args.credits, served(backends).semesters)
        served(backends).risk_line(args.at_risk_below)
    if args.json:  # the serving runtime's record, the other runtime's beside it under its name
        records = {}
        for name, backend in backends.items():
            records[name] = (backend.explain(args.grades, args.college, args.hindcast).to_dict() if args.explain
                             else dataclasses.asdict(backend.predict(args.grades, args.college, args.hindcast)))
            if args.trajectory:
                ahead = backend.trajectory(args.grades, args.college, args.at_risk_below, credits)
                records[name]["trajectory"] = ahead.to_dict()
        runtime = "onnx" if "onnx" in records else next(iter(records))
        print(json.dumps(records.pop(runtime) | {"runtime": runtime} | records))
        return 0
    for name, backend in backends.items():
        result = backend.predict(args.grades, args.college, args.hindcast)
        note = "" if backend.is_known_college(args.college) else f" ({backend.groups.column} not seen in training)"
        hindcast = "" if result.actual is None else f"; hindcast, actual {result.actual:.2f}"
        print(f"{name}: {backend.semester_label(result.semester - 1)}: {result.prediction:.3f} "
              f"({backend.interval_level:.0%} interval {result.low:.2f}-{result.high:.2f}){hindcast}{note}")
        if args.explain:
            why = backend.explain(args.grades, args.college, args.hindcast)
            print(f"  why: {why.sentence(backend.semester_name(why.semester - 1), group_phrase(backend, args.college))}"
                  f" (--json adds the hidden state after each semester read)")
        if args.trajectory:
            ahead = backend.trajectory(args.grades, args.college, args.at_risk_below, credits)
            for semester, median, low, high in zip(ahead.semesters, ahead.median, ahead.low, ahead.high):
                if semester != result.semester:  # the one predicted above is the path's first
                    print(f"  then {backend.semester_label(semester - 1)}: {median:.3f} ({backend.interval_level:.0%} "
                          f"interval {low:.2f}-{high:.2f})")
            print(f"  {ahead.sentence(backend)}{'' if credits is not None else ' (equal credits)'}")
    return 0


def cmd_web(args) -> None:
    from cgpa_rnn.export.site import build_site

    index = build_site(args.run, args.out, args.ort, args.force)  # checks --out with cgpa_rnn.paths.check_site_folder
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in index.parent.iterdir()
                   if not p.name.startswith(".") and not p.name.endswith((".br", ".gz")))
    print(f"wrote {index.parent}/ ({', '.join(names)}; .br and .gz copies beside them for hosts that serve "
          f"precompressed files); serve it with any static server, e.g. python -m http.server -d {index.parent}")


def cmd_publish(args) -> None:
    from cgpa_rnn.export.publish import publish

    check_output_folder(args.out, (args.run,), "the Hub folder")
    names = publish(args.run, args.out)
    print(f"wrote {args.out}/ ({', '.join(names)}); nothing was uploaded: hf upload USER/NAME {args.out}")


def cmd_lesson(args) -> None:
    require("cgpa lesson", "train")
    import shlex
    from pathlib import Path

    from cgpa_rnn.model.lesson import CELLS, LessonConfig, run_lesson
    from cgpa_rnn.model.lesson_page import FIGURE, Numbers, number, write_lesson
    from cgpa_rnn.rundir import RunDir

    if Path(args.figure_name).name != args.figure_name or not args.figure_name.endswith(".png"):
        raise UserError(f"--figure-name {args.figure_name}: expected a file name ending in .png, without a folder")
    given = {"seed": args.seed} | ({"length": args.steps} if args.steps is not None else {})
    config = LessonConfig.quick(**given) if args.quick else LessonConfig(**given)  # checks --steps and --seed
    check_output_folder(args.out, what="the lesson's files")
    RunDir(args.out).check_writable()  # now, not after a minute of training
    command = " ".join(["cgpa lesson --out", shlex.quote(args.out)] + [f"--seed {args.seed}"] * (args.seed != 0)
                       + [f"--steps {args.steps}"] * (args.steps is not None) + ["--quick"] * args.quick
                       + [f"--figure-name {shlex.quote(args.figure_name)}"] * (args.figure_name != FIGURE))
    print(f"training {len(CELLS)} cells twice each on sequences of {config.length} steps (progress on stderr)")
    lesson = run_lesson(config, report=lambda line: print(line, file=sys.stderr))
    written = write_lesson(lesson, args.out, args.figure_name, command)
    numbers, far = Numbers(lesson), config.length - 1
    for cell in CELLS:
        print(f"{cell:>5}: accuracy {numbers.accuracy(cell, 'no'):.3f} without clipping, "
              f"{numbers.accuracy(cell, 'yes'):.3f} with (chance {numbers.chance:.3f}); gradient at k={far} over "
              f"k=0: {number(numbers.relative(cell, far, 'initial'))} initial, {number(numbers.relative(cell, far))} "
              f"trained, {number(numbers.relative(cell, far, clipping='yes'))} trained with clipping")
    print("wrote " + ", ".join(map(str, written)))


def cmd_demo(args) -> None:
    if not 1 <= args.port <= 65535:
        raise UserError(f"--port {args.port}: expected a port number between 1 and 65535")
    require("cgpa demo", "demo")
    if args.mcp:
        require("cgpa demo --mcp", "mcp")
    from cgpa_rnn.port import check_port

    check_port(args.host, args.port)  # in a second, before Gradio and torch load
    from cgpa_rnn.demo.app import main as demo_main

    demo_main(args.run, port=args.port, rebuild=args.rebuild, host=args.host, mcp=args.mcp or None)


def _add_data_arguments(parser) -> None:
    from cgpa_rnn.data.synthetic import KINDS, SyntheticSpec

    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", help="results CSV (default: the real data set shipped in data/)")
    source.add_argument("--synthetic", type=int, nargs="?", const=SyntheticSpec.students, metavar="N",
                        help=f"use N generated students instead (default N: {SyntheticSpec.students}), "
                             "labelled SYNTHETIC everywhere")
    parser.add_argument("--synthetic-seed", type=int, default=SyntheticSpec.seed)
    parser.add_argument("--synthetic-kind", choices=KINDS, default=SyntheticSpec.kind,
                        help="calibrated: like the shipped data (0-10); sticky: integer grades on 0-20 that repeat, "
                             "three periods, two schools with text codes")
    parser.add_argument("--synthetic-semesters", type=int, metavar="S",
                        help="semesters of the synthetic cohort (default: 5 calibrated, 3 sticky; longer horizons "
                             "repeat the last semester's statistics)")
    parser.add_argument("--semesters", help="the semester columns in order, comma-separated (G1,G2,G3); default: "
                                            "columns named by number (1st, sem2, Semester 3)")
    parser.add_argument("--scale", metavar="LOW-HIGH",
                        help="the cohort's grade scale (default 0-10): 0-4, 0-20, 0-100...")
    parser.add_argument("--group", metavar="COLUMN", help="the group column (a college, a school; text or integer "
                                                         "codes); default: a 'College Code' column if there is one; "
                                                         "none: no group")
    parser.add_argument("--long", metavar="STUDENT,TERM,GRADE",
                        help="the file has one row per student and term, in these three columns")


def _add_config_arguments(parser) -> None:
    """One option per field of ModelConfig and TrainConfig, with the field's default and help."""
    from cgpa_rnn.model.config import CELLS

    group = parser.add_argument_group("model and training (defaults: model/config.py)")
    for _owner, spec in _config_fields():
        default = spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()
        flags = [f"--{spec.name.replace('_', '-')}"] + ([spec.metadata["flag"]] if spec.metadata.get("flag") else [])
        options = {"dest": spec.name, "default": argparse.SUPPRESS, "help": f"{spec.metadata['help']} (default: "
                   f"{' '.join(map(str, default)) if isinstance(default, tuple) else default})"}
        if isinstance(default, bool):
            options["action"] = argparse.BooleanOptionalAction
        elif isinstance(default, tuple):
            options.update(nargs="*", type=float)
        else:
            options["type"] = type(default)
        if spec.name == "cell":
            options["choices"] = CELLS
        group.add_argument(*flags, **options)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cgpa", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="load a cohort and print its summary")
    _add_data_arguments(data)
    data.add_argument("--json", action="store_true")
    data.set_defaults(handler=cmd_data)

    train = commands.add_parser("train", help="train a model into a run directory")
    _add_data_arguments(train)
    _add_config_arguments(train)
    train.add_argument("--out", required=True, help="run directory")
    train.set_defaults(handler=cmd_train)

    evaluate = commands.add_parser("evaluate", help="repeated student-level cross-validation")
    _add_data_arguments(evaluate)
    _add_config_arguments(evaluate)
    evaluate.add_argument("--folds", type=int, default=argparse.SUPPRESS,
                          help="folds of the student-level cross-validation (default: model/evaluate.py's FOLDS)")
    evaluate.add_argument("--repeats", type=int, default=argparse.SUPPRESS,
                          help="repeats with a fresh shuffle (default: model/evaluate.py's REPEATS)")
    evaluate.add_argument("--seeds", type=int, default=argparse.SUPPRESS,
                          help="seeds the default cell is trained with on every fold, to show the noise of "
                               "training (default: model/evaluate.py's SEEDS)")
    evaluate.add_argument("--cells", help="comma-separated subset of the cells (default: all)")
    evaluate.add_argument("--out", required=True)
    evaluate.set_defaults(handler=cmd_evaluate)

    export = commands.add_parser("export", help="write DIR/model.onnx from DIR/model.pt")
    export.add_argument("run", help="run directory")
    export.add_argument("--quantize", action="store_true", help="also write an int8 model where it helps")
    export.set_defaults(handler=cmd_export)

    verify = commands.add_parser("verify", help="check model.onnx against model.pt; exit 1 on a mismatch")
    verify.add_argument("run")
    verify.add_argument("--samples", type=int, help="random students besides the training data (default: 10,000)")
    verify.add_argument("--data", help="the training CSV, when it is not the shipped data set")
    verify.set_defaults(handler=cmd_verify)

    bench = commands.add_parser("bench", help="torch vs onnxruntime latency, throughput and size")
    bench.add_argument("run", nargs="?", help="run directory (not with --train)")
    bench.add_argument("--train", action="store_true", help="measure `cgpa train` instead: time and peak memory at "
                                                            "20,000, 200,000 and 1,000,000 SYNTHETIC students "
                                                            "(8 semesters), each in its own process")
    bench.add_argument("--train-sizes", metavar="N,N,...", help="with --train: the cohort sizes to train")
    bench.add_argument("--calls", type=int, default=argparse.SUPPRESS,
                       help="batch-1 calls timed per runtime (default: export/bench.py's)")
    bench.add_argument("--batch", type=int, default=argparse.SUPPRESS,
                       help="rows per call for throughput (default: export/bench.py's)")
    bench.add_argument("--demo", action="store_true", help="measure the Gradio demo over HTTP instead")
    bench.add_argument("--csv", type=int, metavar="ROWS", help="measure `cgpa predict --csv` on ROWS generated "
                                                                "students instead (rows/s, peak memory)")
    bench.set_defaults(handler=cmd_bench)

    predict = commands.add_parser("predict", help="predict one student or score a CSV")
    predict.add_argument("run")
    predict.add_argument("--backend", choices=("torch", "onnx", "both"),
                         help="default for one student: both where torch is installed, else onnx; for --csv: onnx")
    predict.add_argument("--grades", help='comma-separated, blank for missing: "7.1,6.8,,7.3"')
    predict.add_argument("--college", help="the student's group: a college code, or a text label like GP (the "
                                           "model's group column; not needed by a model without one)")
    predict.add_argument("--csv", help="a CSV in the data format")
    predict.add_argument("--long", metavar="STUDENT,TERM,GRADE",
                         help="the --csv file has one row per student and term, in these three columns")
    predict.add_argument("--out", help="where to write the scored CSV")
    predict.add_argument("--explain", action="store_true",
                         help="split one student's prediction into the prior and the network's correction, with the "
                              "hidden state after each semester read")
    predict.add_argument("--json", action="store_true", help="one student's answer as one JSON line")
    predict.add_argument("--trajectory", action="store_true",
                         help="also forecast the rest of the degree: every later semester with a widening 80%% "
                              "interval, the final CGPA and the chance of ending below --at-risk-below (with --csv: "
                              "the columns semK_pred/low/high, final_cgpa, final_low, final_high, p_below)")
    predict.add_argument("--at-risk-below", metavar="X", help="with --trajectory: the line of the final CGPA's risk "
                                                              "(default: 60%% of the way up the model's scale)")
    predict.add_argument("--credits", metavar="C1,C2,...", help="with --trajectory: each semester's weight in the "
                                                                "final CGPA, one number per semester (default: equal)")
    predict.add_argument("--hindcast", action="store_true",
                         help="predict each student's last known semester from the earlier ones and compare (students "
                              "whose final semester is known are always scored this way)")
    predict.set_defaults(handler=cmd_predict)

    web = commands.add_parser("web", help="write a static site that runs the model in the browser")
    web.add_argument("run")
    web.add_argument("--out", required=True, help="folder for the site")
    web.add_argument("--ort", help="onnxruntime-web: a local dist/ folder to copy, or a base URL "
                                   "(default: a pinned version on a public CDN)")
    web.add_argument("--force", action="store_true", help="write into a non-empty folder that is not a site cgpa "
                                                           "web wrote (its other files stay)")
    web.set_defaults(handler=cmd_web)

    publish = commands.add_parser("publish", help="lay out a folder as a Hugging Face model repository "
                                                  "(nothing is uploaded)")
    publish.add_argument("run")
    publish.add_argument("--out", required=True, help="folder for the Hub repository's files")
    publish.set_defaults(handler=cmd_publish)

    lesson = commands.add_parser("lesson", help="the vanishing gradient, measured: four cells on a long-memory task "
                                                "(a page, a figure and CSVs)")
    lesson.add_argument("--out", required=True, help="folder for gradients.csv, results.csv, the figure and lesson.md")
    lesson.add_argument("--seed", type=int, default=0, help="seed of the weights and sequences (default: 0)")
    lesson.add_argument("--steps", type=int, help="sequence length T (default: 50; 20 with --quick)")
    lesson.add_argument("--quick", action="store_true",
                        help="small settings that run in seconds (for trying it out; the outcomes mean little)")
    lesson.add_argument("--figure-name", default="gradients.png",
                        help="the figure's file name, also the page's link to it (default: gradients.png)")
    lesson.set_defaults(handler=cmd_lesson)

    demo = commands.add_parser("demo", help="serve the Gradio demo (same as python -m demo)")
    demo.add_argument("run", nargs="?", help="run directory (default: the shipped model)")
    demo.add_argument("--port", type=int, default=7860)
    demo.add_argument("--rebuild", action="store_true", help="train, export and verify first")
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    demo.add_argument("--mcp", action="store_true",
                      help="also serve the public endpoints as MCP tools at /gradio_api/mcp/ (the [mcp] extra)")
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stop_cleanly_on_sigterm()  # a stopped command cleans up as a failed one does (cgpa_rnn/processes.py)
    try:
        return args.handler(args) or 0
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as error:
        serves_demo = args.command == "demo" or getattr(args, "demo", False)
        message = extra_needed(f"cgpa {args.command}", error.name or "", "demo" if serves_demo else None)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
