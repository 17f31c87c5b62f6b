"""The tiny world's calibration figures, each against its target, from one finished run.

    python benchmarks/tiny_calibration.py                        # results/, runs/tiny
    python benchmarks/tiny_calibration.py --results reference/tiny-seeds --runs runs/tiny
    python benchmarks/tiny_calibration.py --probe                # + the privileged-context probe
    python benchmarks/tiny_calibration.py --probe data.out_dir=DIR   # a world built elsewhere

Prints, for the rows of Table 1 (and Table 2 when present):
- every row's Average per seed, its mean and std over seeds, and one run's stderr;
- the targets: SFT rows' std over seeds <= 5, the teacher >= 10 points above every
  student row (seed means), one run's stderr of an Average <= 2, >= 100 problems a bench;
- tool errors: the share of rollouts whose first tool call failed, and their accuracy
  against rollouts whose first call ran (pooled over benches and seeds);
- the SOD runs' step patterns (erroneous / recovery / stable, % of trajectories);
- with --probe: accuracy of the SFT'd students and the teacher on RL problems with the
  plain prompt, with the reference solution and with the hint (sodctl.eval.privileged).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sodctl.results.calibration import row_averages, sod_patterns, tool_error_effect

TEACHER = ("4b", "teacher")


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="results", help="eval.results_dir of the run")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--runs", default="runs/tiny", help="output_dir of the run")
    ap.add_argument("--probe", action="store_true", help="run the privileged-context probe")
    ap.add_argument("--probe-n", type=int, default=128, help="RL problems the probe uses")
    ap.add_argument(
        "--probe-seed",
        type=int,
        default=None,
        help="with --seeds runs: the seed whose models it probes",
    )
    ap.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="config overrides for the probe (data.out_dir=...)",
    )
    args = ap.parse_args()

    rows = row_averages(args.results, args.preset)
    if not rows:
        print(f"no complete rows under {args.results}/{args.preset}")
        return 1
    teacher = rows.get(TEACHER) or rows.get(("4b", "grpo"))
    print(f"## rows ({args.results}, preset {args.preset})\n")
    print("| model | method | seeds | Average per seed | mean | std | max one-run stderr |")
    print("| --- | --- | ---: | --- | ---: | ---: | ---: |")
    for (model, method), r in rows.items():
        per = ", ".join(f"{s or '-'}: {v:.1f}" for s, v in r.average.items())
        print(
            f"| {model} | {method} | {len(r.average)} | {per} | {r.mean:.1f} | {r.std:.1f} "
            f"| {max(r.stderr.values()):.2f} |"
        )
    students = {k: r for k, r in rows.items() if k[0] != "4b" and k[1] != "vanilla"}
    print("\n## targets\n")
    for (model, method), r in rows.items():
        if method == "sft":
            print(
                f"- SFT {model}: std over {len(r.average)} seeds {r.std:.1f} <= 5: {_verdict(r.std <= 5)}"
            )
    if teacher is not None and students:
        best = max(students.items(), key=lambda kv: kv[1].mean)
        margin = teacher.mean - best[1].mean
        print(
            f"- teacher {teacher.mean:.1f} vs best student {best[0][0]} {best[0][1]} "
            f"{best[1].mean:.1f}: margin {margin:+.1f} >= 10: {_verdict(margin >= 10)}"
        )
    worst = max(max(r.stderr.values()) for r in rows.values())
    print(f"- largest one-run stderr of an Average {worst:.2f} <= 2: {_verdict(worst <= 2)}")
    fewest = min(min(r.n_problems.values()) for r in rows.values())
    print(f"- fewest problems in a bench {fewest} >= 100: {_verdict(fewest >= 100)}")

    print("\n## tool errors (evaluation records, pooled over benches and seeds)\n")
    print(
        "| model | method | rollouts | first call failed % | acc after it % | acc when it ran % | any failure % |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for (model, method), e in sorted(tool_error_effect(args.results, args.preset).items()):
        if method == "vanilla":
            continue
        print(
            f"| {model} | {method} | {e.samples} | {e.early_error_pct:.1f} | {_fmt(e.acc_after_error)} "
            f"| {_fmt(e.acc_no_error)} | {100.0 * e.any_error / max(e.samples, 1):.1f} |"
        )

    patterns = sod_patterns(args.runs)
    if patterns:
        print("\n## step patterns of the runs that log them (% of trajectories, mean over steps)\n")
        print("| run | stable | erroneous | recovery |")
        print("| --- | ---: | ---: | ---: |")
        for name, p in patterns.items():
            print(
                f"| {name} | {_fmt(p.get('stable'))} | {_fmt(p.get('erroneous'))} | {_fmt(p.get('recovery'))} |"
            )

    if args.probe:
        from sodctl.errors import SodctlUsageError

        try:
            _probe(args)
        except SodctlUsageError as e:
            print(f"tiny_calibration: error: {e.message}")
            return 2
    return 0


def _probe(args) -> None:
    from omegaconf import OmegaConf

    from sodctl.cli import quiet_libraries
    from sodctl.commands.common import load
    from sodctl.config.paths import final_model_dir
    from sodctl.eval.privileged import privileged_accuracy
    from sodctl.pipeline import seed_overrides

    quiet_libraries(True)  # no "Loading weights" bar per model, as the CLI without --verbose

    print(f"\n## privileged context (first {args.probe_n} RL problems, k=2, eval sampling)\n")
    print("| model | plain % | + solution % | + hint % | by kind (plain / solution / hint) |")
    print("| --- | ---: | ---: | ---: | --- |")
    runs = Path(args.runs)
    seeds = sorted(int(d.name.removeprefix("seed-")) for d in runs.glob("seed-*"))
    seed = args.probe_seed if args.probe_seed is not None else (seeds[0] if seeds else None)
    # a --seeds run's layout, exactly as reproduce lays it out (the shared teacher included)
    where = seed_overrides(
        OmegaConf.create({"output_dir": str(runs)}), seed, bool(seeds), args.overrides
    ) or [f"output_dir={runs}"]
    for experiment in ("table1/sft-0.6b", "table1/sft-1.7b", "teacher/grpo-4b"):
        cfg = load(experiment, [*where, *args.overrides], preset=args.preset)
        model = final_model_dir(cfg)
        if not model.is_dir():
            print(f"| {experiment} | (no model at {model}) | | | |")
            continue
        acc = privileged_accuracy(cfg, str(model), n=args.probe_n)
        kinds = "; ".join(
            f"{k} {v['plain']:.0f} / {v['solution']:.0f} / {v['hint']:.0f}"
            for k, v in acc.by_kind.items()
        )
        o = acc.overall
        print(
            f"| {experiment} | {o['plain']:.1f} | {o['solution']:.1f} | {o['hint']:.1f} | {kinds} |"
        )


if __name__ == "__main__":
    raise SystemExit(main())
