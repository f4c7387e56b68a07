"""CLI: ``jaqmoo cost`` -- per-layer best mappings and network totals of a model on an accelerator."""

from __future__ import annotations

import argparse
from pathlib import Path

from jaqmoo.commands import add_quiet_option, add_timeloop_options, number_arg
from jaqmoo.safe_write import write_csv


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "cost",
        help="map every layer of a model onto an accelerator and print energy/cycles/memory",
        description="Find each layer's best mapping (vectorized mapper) and print a per-layer table and totals.",
    )
    p.add_argument("--model", required=True, help="mobilenet_v1, mobilenet_v2, resnet18, mobilenet_v3_small, simple_cnn, "
                                                  "torchvision:<name> (e.g. torchvision:resnet50) or "
                                                  "package.module:callable")
    p.add_argument("--input", default="3x224x224", help="input shape CxHxW (default 3x224x224)")
    p.add_argument("--accelerator", default="eyeriss", help="template name (eyeriss, simba, ...), Timeloop YAML or folder")
    p.add_argument("--bits", default="8", help="bits for all layers: B or WBITS/ABITS such as 4/8 (default 8)")
    p.add_argument("--bits-file", type=Path,
                   help="per-layer bits YAML (overrides --bits; format: README 'Bits files'); its 'hardware' "
                        "mapping, as `jaqmoo export --point K --bits-file` writes it, sets the template parameters "
                        "(--set wins)")
    p.add_argument("--policy-file", type=Path,
                   help="per-layer bits, mappings and hardware as `jaqmoo export --point K --policy-file` writes them: "
                        "each layer is costed with its own mapping (no search), reproducing the point (--set wins "
                        "over its hardware)")
    p.add_argument("--width-mult", type=float, default=1.0, help="channel width multiplier of the model (default 1.0)")
    p.add_argument("--metric", default="energy", choices=["energy", "edp", "cycles"], help="what each layer's mapper minimizes")
    p.add_argument("--csv", type=Path, help="write the per-layer table to this CSV file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="template parameter override, e.g. --set pe_x=16 (repeatable)")
    p.add_argument("--num-classes", type=number_arg(int, lo=1), default=1000, help="classifier outputs (default 1000)")
    p.add_argument("--budget", type=int, default=None, help="factor splits the mapper samples per layer")
    p.add_argument("--accumulator-bits", type=int, default=None, metavar="BITS",
                   help="partial-sum width at every level still reducing outputs (default: the template's "
                        "psum width, else each level's datawidth)")
    add_timeloop_options(p, "write every layer as Timeloop inputs (architecture, problem, constraints, the chosen "
                            "mapping) with jaqmoo's figures in Timeloop's stats format, one folder per layer, and a "
                            "README.md on running timeloop-model and `jaqmoo timeloop check`")
    add_quiet_option(p)
    p.set_defaults(func=run)


def bits_file_hardware(path: Path) -> dict[str, int]:
    """The ``hardware`` mapping of a bits file (``{}`` when it has none), values checked as integers."""
    import yaml

    from jaqmoo.errors import JaqmooError
    from jaqmoo.textfile import read_utf8

    if not path.is_file():
        return {}  # QuantPolicy.load says what is wrong with the path
    try:
        data = yaml.safe_load(read_utf8(path, "a YAML bits file"))
    except yaml.YAMLError:
        return {}  # ditto: the policy reader reports the YAML error
    hardware = data.get("hardware") if isinstance(data, dict) else None
    if hardware is None:
        return {}
    if not isinstance(hardware, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in hardware.values()):
        raise JaqmooError(f"{path}: hardware: expected a mapping of template parameters to integers, "
                          f"such as {{pe_x: 14, glb_depth: 16384}} (got {hardware!r})")
    return {str(k): int(v) for k, v in hardware.items()}


def run(args: argparse.Namespace) -> int:
    from jaqmoo.cost import network_cost, network_cost_of_mappings, policy_file_mappings
    from jaqmoo.errors import JaqmooError
    from jaqmoo.hardware.templates import load_accelerator_spec
    from jaqmoo.hardware.templates.registry import parse_overrides
    from jaqmoo.mapping.mapper import Mapper
    from jaqmoo.models import model_workload
    from jaqmoo.quant.policy import QuantPolicy, parse_bits_spec
    from jaqmoo.tracing import describe_not_costed
    from jaqmoo.workload import parse_input_shape

    shape = parse_input_shape(args.input)
    if args.policy_file is not None and args.bits_file is not None:
        raise JaqmooError("give --bits-file or --policy-file, not both (a policy file holds the bits too)")
    bits_file = args.policy_file if args.policy_file is not None else args.bits_file
    overrides = {**(bits_file_hardware(bits_file) if bits_file is not None else {}),
                 **parse_overrides(args.overrides)}
    accel = load_accelerator_spec(args.accelerator, **overrides)
    if args.accumulator_bits is not None:
        accel = accel.with_accumulator_bits(args.accumulator_bits, "--accumulator-bits")
    workload = model_workload(args.model, shape, args.num_classes, args.width_mult)
    names = [layer.name for layer in workload.layers]
    if bits_file is not None:
        policy = QuantPolicy.load(bits_file, names)
    else:
        w, a = parse_bits_spec(args.bits)
        policy = QuantPolicy.uniform(names, w, a)
    if args.budget is not None and args.budget < 1:
        raise JaqmooError(f"--budget must be a positive integer (got {args.budget})")
    mapper = Mapper(metric=args.metric) if args.budget is None else Mapper(metric=args.metric, budget=args.budget)
    if args.policy_file is not None:
        result = network_cost_of_mappings(workload, accel, policy, policy_file_mappings(args.policy_file),
                                          args.metric, str(args.policy_file))
    else:
        result = network_cost(workload, accel, policy=policy, metric=args.metric, mapper=mapper, progress=not args.quiet)
    df = result.to_dataframe()
    cols = ["layer", "shape", "w_bits", "in_bits", "out_bits", "mapping", "energy_uj", "cycles", "utilization",
            "weight_kib_packed"]
    import pandas as pd

    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 250,
                           "display.max_colwidth", 90, "display.float_format", "{:.4g}".format):
        print(df[cols].to_string(index=False))
    print(result.summary())
    if result.feasible:
        print("  energy per level (psum: partial-sum accesses, at accumulator bits):")
        print(result.level_table())
    print("  not costed (the cost model leaves these operations out):")
    print("\n".join(f"    {line}" for line in describe_not_costed(workload.not_costed) or ["nothing"]))
    if args.policy_file is not None:
        print(f"  mappings: each layer's own from {args.policy_file} (no mapper search)")
    else:
        print(f"  mapper: {mapper.stats.evaluated} mappings evaluated in {mapper.stats.searches} searches "
              f"({mapper.stats.search_seconds:.1f} s), {mapper.stats.result_hits} cache hits")
    if args.csv is not None:
        write_csv(df, args.csv, "the --csv table")
        print(f"wrote {args.csv}")
    if args.timeloop is not None:
        _write_timeloop(args, accel, result, bits=args.bits if args.bits_file is None else None)
    return 0


def _write_timeloop(args: argparse.Namespace, accel, result, bits: str | None) -> None:
    from jaqmoo.commands.timeloop import print_export
    from jaqmoo.errors import JaqmooError
    from jaqmoo.timeloop.export import choices_of, export_network

    if not result.feasible:
        raise JaqmooError(f"--timeloop: the network does not fit the accelerator ({result.reason}); nothing to export")
    source = (f"jaqmoo cost --model {args.model} --input {args.input} --accelerator {args.accelerator} "
              + (f"--bits {bits}" if bits is not None else f"--bits-file {args.bits_file}")
              + f" --metric {args.metric} --timeloop {args.timeloop} --dialect {args.dialect}")
    layers = export_network(args.timeloop, accel, choices_of(result.layers), args.dialect,
                            f"{args.model} on {accel.name}", source)
    print_export(args.timeloop, layers)
