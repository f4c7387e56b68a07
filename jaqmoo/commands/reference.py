"""CLI: ``jaqmoo spec --example | --markdown`` and ``jaqmoo columns [--markdown]``: references
generated from the code, so they stay true.

The spec reference walks the spec's dataclasses (:mod:`jaqmoo.experiment.spec`) and the
training options (:class:`jaqmoo.quant.train.TrainConfig`) for every key, its type and its
default; :data:`SPEC_KEYS` adds the unit and meaning of each (a test fails when a key has
no entry here, or an entry names a key that no longer exists).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

#: section -> the dataclass holding its keys (the top level's scalar keys are listed by hand)
SECTIONS = ("model", "dataset", "accelerator", "quantization", "mapping", "accuracy", "constraints", "search")

#: "section.key" -> (unit, meaning); ``accuracy.train.<option>`` for the training options
SPEC_KEYS: dict[str, tuple[str, str]] = {
    "name": ("-", "the run's name; the run folder is runs/<name> unless output.dir or --out says otherwise"),
    "seed": ("-", "seed of the search and of supernet training (not of the data split: dataset.split_seed)"),
    "objectives": ("-", "what the search optimises: accuracy (max), energy, latency, edp, memory, area (min)"),
    "output.dir": ("path", "the run folder (default runs/<name>)"),
    "model.name": ("-", "the CNN: simple_cnn, mobilenet_v1, mobilenet_v2, resnet18, mobilenet_v3_small, "
                        "torchvision:<name> (any torchvision classifier) or package.module:callable (your builder)"),
    "model.width_mult": ("x", "channel width multiplier (0.25 = a quarter of the channels)"),
    "model.checkpoint": ("path", "float weights the supernet starts from (a torchvision weights file or your "
                                 "state_dict; keys must match exactly); the float epochs are then skipped"),
    "model.elastic": ("-", "an architecture search: {depth: [...], expand: [...], kernel: [...]} "
                           "(mobilenet_v1, mobilenet_v2; {} takes the defaults)"),
    "dataset.name": ("-", "digits (built in), fashion-mnist, cifar10 or imagefolder"),
    "dataset.root": ("path", "the dataset's folder (required for imagefolder: train/ and val/)"),
    "dataset.input_size": ("pixels", "image side for imagefolder (the other datasets have a fixed size)"),
    "dataset.split_seed": ("-", "seed of the train/validation split (kept fixed across search seeds)"),
    "accelerator.template": ("-", "eyeriss, simba, weight_stationary or output_stationary"),
    "accelerator.fixed": ("the parameter's", "template parameters held fixed, e.g. {technology: 45, pe_x: 14}"),
    "accelerator.search": ("-", "hardware genes: a list of parameter names (their template choices), a mapping "
                                "name -> [values], or 'all'"),
    "accelerator.search_all": ("-", "set by `search: all` (every searchable parameter); not written by hand"),
    "accelerator.timeloop": ("path", "a Timeloop architecture folder or file instead of a template (fixed hardware)"),
    "quantization.weight_bits": ("bit", "weight bit-width choices per layer (2..8)"),
    "quantization.act_bits": ("bit", "activation bit-width choices per layer (2..8)"),
    "quantization.fixed_layers": ("bit", "layers held at fixed bits: {first: [8, 8], last: [8, 8], <layer>: [w, a]}"),
    "quantization.accumulator_bits": ("bit", "partial-sum width at levels still reducing outputs "
                                             "(default: the template's psum width)"),
    "mapping.mode": ("-", "inner: the mapper picks each layer's best mapping; outer: mapping genes evolve"),
    "mapping.metric": ("-", "what the mapper minimises per layer: energy, edp or cycles"),
    "mapping.candidates": ("mappings", "outer mode: candidate mappings per layer the gene indexes into"),
    "mapping.cache_dir": ("path", "mapper warm-up cache folder (default: <run>/mapper-cache; false: none)"),
    "accuracy.estimator": ("-", "supernet: every candidate scored by the supernet; predictor: a monotone ridge "
                                "model fitted on supernet samples, the front re-scored by the supernet"),
    "accuracy.checkpoint": ("path", "supernet checkpoint: loaded if present, else trained and written there"),
    "accuracy.cache_dir": ("path", "folder of supernets named by a hash of their identity (when no checkpoint)"),
    "accuracy.train": ("-", "the supernet's training recipe (options below)"),
    "accuracy.val_images": ("images", "cap on the validation images each estimate uses (digits has 144)"),
    "accuracy.predictor_samples": ("policies", "supernet-scored samples the predictor is fitted on"),
    "accuracy.rescore_front": ("-", "re-score a predictor run's best individuals with the supernet"),
    "accuracy.train.epochs": ("epochs", "quantized (sandwich-rule) epochs"),
    "accuracy.train.float_epochs": ("epochs", "plain float epochs first (a float-trained start; CSQ needs one)"),
    "accuracy.train.batch_size": ("images", "training batch size"),
    "accuracy.train.lr": ("-", "peak learning rate (cosine decay to 0)"),
    "accuracy.train.quant_lr": ("-", "with float_epochs: the quantized epochs get a cosine of their own from this rate "
                                     "(null: one cosine over all epochs from lr)"),
    "accuracy.train.augment": ("-", "training-batch augmentation: none, crop (random 2-pixel shifts) or crop-flip "
                                    "(and left-right flips)"),
    "accuracy.train.weight_decay": ("-", "weight decay of conv/linear weights"),
    "accuracy.train.optimizer": ("-", "adamw or sgd"),
    "accuracy.train.per_channel": ("-", "one weight step per output channel (false: per layer)"),
    "accuracy.train.csq_fraction": ("fraction 0-1", "CSQ: share of each layer's most quantization-sensitive "
                                                    "channels trained quantization-aware (0 = all, plain LSQ)"),
    "accuracy.train.n_random": ("policies", "random bit policies per step besides the largest and smallest"),
    "accuracy.train.distill": ("-", "distillation: the non-largest policies learn from a teacher's soft predictions"),
    "accuracy.train.teacher": ("-", "who teaches when distilling: inplace (the largest policy) or float (a frozen "
                                    "copy of the float start; teaches every policy)"),
    "accuracy.train.sensitivity_batches": ("batches", "batches ranking CSQ's sensitive channels per epoch"),
    "accuracy.train.device": ("-", "auto (CUDA when present), cpu or cuda[:N]"),
    "accuracy.train.download": ("-", "let torchvision download the dataset if missing"),
    "accuracy.train.max_train": ("images", "train on a seeded subset of this many images (null: all)"),
    "accuracy.train.max_val": ("images", "validation images of the per-epoch accuracy line"),
    "constraints.min_accuracy": ("fraction 0-1", "lowest accuracy a valid point may have"),
    "constraints.max_accuracy_drop": ("fraction 0-1", "at most this far below uniform 8-bit (0.05 = 5 points)"),
    "constraints.max_area_mm2": ("mm²", "area budget of the accelerator"),
    "search.algorithm": ("-", "nsga2, nsga3, unsga3, smsemoa, spea2, rnsga2, or a seed paper's searcher: uniform, "
                              "random, haq, bits-nsga2"),
    "search.population": ("individuals", "population per generation (>= 4)"),
    "search.generations": ("generations", "generations to run"),
    "search.seed_bits": ("bit", "uniform policies seeded into the first population (and marked as baselines)"),
    "search.batch_size": ("individuals", "individuals evaluated (and written) per batch"),
    "search.init": ("-", "first population: own (each searcher's), or spread / random (the seeds, then policies "
                         "spread over precision levels / uniformly random, the same bits for every searcher)"),
    "search.haq_resource": ("-", "haq: the resource its budgets hold: energy, latency or memory"),
    "search.haq_budgets": ("fraction 0-1", "haq: budgets as fractions of uniform 8-bit's cost, one agent each"),
}

#: types the dataclasses store differently from how a spec writes them
TYPES: dict[str, str] = {
    "model.elastic": "mapping or null", "accelerator.fixed": "mapping name -> int",
    "accelerator.search": "list of names, mapping name -> list of int, or 'all'", "accelerator.search_all": "bool",
    "quantization.fixed_layers": "mapping layer -> [w, a]", "accuracy.train": "mapping",
    "mapping.cache_dir": "str, false or null",
}
#: keys written as mappings (their empty default is {})
MAPPINGS = ("accelerator.fixed", "quantization.fixed_layers", "accuracy.train")

#: example values for keys without a usable default (required ones)
EXAMPLES: dict[str, Any] = {"name": "my-experiment", "model.name": "simple_cnn", "dataset.name": "digits",
                            "accelerator.template": "eyeriss", "objectives": ["accuracy", "energy", "memory"]}


def _spec_classes() -> dict[str, type]:
    from jaqmoo.experiment import spec

    return {"model": spec.ModelSpec, "dataset": spec.DatasetSpec, "accelerator": spec.AcceleratorSpec,
            "quantization": spec.QuantizationSpec, "mapping": spec.MappingSpec, "accuracy": spec.AccuracySpec,
            "constraints": spec.ConstraintSpec, "search": spec.SearchSpec}


def _plain(value: Any) -> Any:
    """A dataclass default as YAML-ready plain data."""
    if isinstance(value, tuple):
        if value and all(isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) for x in value):
            return {k: _plain(v) for k, v in value}
        return [_plain(v) for v in value]
    return value


def _type_text(t: Any) -> str:
    text = str(t).replace("typing.", "").replace(" | None", " or null")
    return {"tuple[int, ...]": "list of int", "tuple[float, ...]": "list of float",
            "tuple[str, ...]": "list of str"}.get(text, text)


def spec_reference_rows() -> list[dict[str, Any]]:
    """Every spec key: ``{"key", "type", "default", "unit", "meaning"}``, in spec order."""
    from jaqmoo.experiment.accuracy import SPEC_OWNED_TRAIN_FIELDS
    from jaqmoo.experiment.spec import ExperimentSpec
    from jaqmoo.quant.train import TrainConfig

    top = {f.name: f for f in dataclasses.fields(ExperimentSpec)}
    rows = []

    def add(key: str, type_: Any, default: Any) -> None:
        unit, meaning = SPEC_KEYS.get(key, ("?", "UNDOCUMENTED"))
        default = {} if key in MAPPINGS and default == [] else default
        rows.append({"key": key, "type": TYPES.get(key, _type_text(type_)), "default": default, "unit": unit,
                     "meaning": meaning})

    add("name", "str", "the spec file's name")
    add("seed", "int", top["seed"].default)
    for section, cls in _spec_classes().items():
        for f in dataclasses.fields(cls):
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            add(f"{section}.{f.name}", f.type, "required" if required else _plain(f.default))
            if section == "accuracy" and f.name == "train":
                for t in dataclasses.fields(TrainConfig):
                    if t.name not in SPEC_OWNED_TRAIN_FIELDS and t.name != "input_size":
                        add(f"accuracy.train.{t.name}", t.type, t.default)
        if section == "accuracy":
            add("objectives", "list of str", list(top["objectives"].default))
    add("output.dir", "str | None", None)
    return rows


def spec_markdown() -> str:
    """The spec reference as a Markdown table (README's "Spec reference")."""
    lines = ["| key | type | default | unit | meaning |", "| --- | --- | --- | --- | --- |"]
    for r in spec_reference_rows():
        default = "`null`" if r["default"] is None else f"`{r['default']}`"
        lines.append(f"| `{r['key']}` | {r['type']} | {default} | {r['unit']} | {r['meaning']} |")
    return "\n".join(lines) + "\n"


def spec_example() -> str:
    """A commented YAML template holding every key at its default (valid as it is)."""
    import yaml

    def dump(value: Any) -> str:
        return yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("\n...")

    rows = spec_reference_rows()
    out = ["# jaqmoo experiment spec: every key at its default (`jaqmoo spec --example`).",
           "# Units and meanings: README.md, 'Spec reference'. Run it: jaqmoo run this.yaml", ""]
    section = None
    for r in rows:
        key, value = r["key"], EXAMPLES.get(r["key"], r["default"])
        if key in ("accelerator.search_all",):
            continue
        parts = key.split(".")
        comment = f"  # {r['type']}, {r['unit']}: {r['meaning']}"
        if key == "name":
            value = EXAMPLES["name"]
        if len(parts) == 1:
            section = None
            out.append(f"{key}: {dump(value)}{comment}")
            continue
        if parts[0] != section:
            section = parts[0]
            out.append(f"{section}:")
        if key == "accuracy.train":
            out.append(f"  train:{comment}")
            continue
        indent = "    " if len(parts) == 3 else "  "
        line = f"{indent}{parts[-1]}: {dump(value)}{comment}"
        if key == "accelerator.timeloop":  # either a template or a Timeloop architecture
            line = f"{indent}# {parts[-1]}: path/to/timeloop/arch  {comment.strip()} (replaces template)"
        out.append(line)
    return "\n".join(out) + "\n"


#: JSON Schema of the type texts of :func:`spec_reference_rows` (the dataclasses' field types)
_JSON_TYPES: dict[str, dict] = {
    "int": {"type": "integer"}, "float": {"type": "number"}, "str": {"type": "string"}, "bool": {"type": "boolean"},
    "list of int": {"type": "array", "items": {"type": "integer"}},
    "list of float": {"type": "array", "items": {"type": "number"}},
    "list of str": {"type": "array", "items": {"type": "string"}},
    "mapping": {"type": "object"},
    "mapping name -> int": {"type": "object", "additionalProperties": {"type": "integer"}},
    "mapping layer -> [w, a]": {"type": "object"},
    "list of names, mapping name -> list of int, or 'all'": {"anyOf": [
        {"type": "array", "items": {"type": "string"}},
        {"type": "object", "additionalProperties": {"type": ["array", "null"], "items": {"type": "integer"}}},
        {"const": "all"}]},
    "str, false or null": {"anyOf": [{"type": "string"}, {"const": False}, {"type": "null"}]},
}
#: specs read with the rule recorder on, so that every check of the reader runs at least once
#: (the example holds null for the optional numbers; these set them)
_PROBES: tuple[dict, ...] = (
    {},
    {"constraints": {"min_accuracy": 0.5, "max_area_mm2": 1.0}, "quantization": {"accumulator_bits": 24}},
    {"constraints": {"max_accuracy_drop": 0.05}},
    {"model": {"name": "mobilenet_v2", "elastic": {}}},
)


def _json_type(type_text: str) -> dict:
    if type_text in _JSON_TYPES:
        return dict(_JSON_TYPES[type_text])
    out = dict(_JSON_TYPES[type_text.removesuffix(" or null")])  # "X or null"
    return out | {"type": [out["type"], "null"]} if "type" in out else {"anyOf": [out, {"type": "null"}]}


def recorded_rules() -> dict[str, dict]:
    """Every spec key's value rule as the reader itself checks it (:func:`jaqmoo.experiment.fields.recording_rules`
    while the example spec and a few variants of it are read)."""
    import yaml

    from jaqmoo.errors import JaqmooError
    from jaqmoo.experiment.fields import recording_rules
    from jaqmoo.experiment.spec import parse_spec

    example = yaml.safe_load(spec_example())
    with recording_rules() as rules:
        for probe in _PROBES:
            data = {k: (v | probe[k] if isinstance(v, dict) and k in probe else v) for k, v in example.items()}
            try:
                parse_spec(data, source="schema")
            except JaqmooError:
                pass  # a probe's combination may be refused after its values were checked
    return dict(rules)


def spec_schema() -> dict:
    """The JSON Schema (draft 2020-12) of an experiment spec, generated from the code: keys, types and
    defaults from the spec's dataclasses (:func:`spec_reference_rows`), ranges and choices from the
    reader's own checks (:func:`recorded_rules`), descriptions and units from :data:`SPEC_KEYS`."""
    rules = recorded_rules()
    root: dict = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                  "$id": "https://jaqmoo.invalid/schema/experiment-spec.json", "title": "jaqmoo experiment spec",
                  "description": "A `jaqmoo run` spec (README 'Spec reference'; `jaqmoo spec --example`).",
                  "type": "object", "additionalProperties": False, "properties": {},
                  "required": ["model", "dataset", "accelerator"]}
    for r in spec_reference_rows():
        key = r["key"]
        if key == "accelerator.search_all":
            continue  # set by `search: all`, not written in a spec
        node = root
        for part in key.split(".")[:-1]:
            node = node["properties"].setdefault(part, {"type": "object", "additionalProperties": False,
                                                        "properties": {}})
        prop = _json_type(r["type"])
        if key in rules:  # the reader's own range / choices, nullable where the field is
            rule = dict(rules[key])
            if isinstance(prop.get("type"), list) and "type" in rule:
                rule["type"] = [rule["type"], "null"]
                if "enum" in rule:
                    rule["enum"] = [*rule["enum"], None]
            prop = prop | rule
        unit = "" if r["unit"] in ("-", "") else f" [{r['unit']}]"
        prop["description"] = f"{r['meaning']}{unit}"
        if r["default"] == "required":
            node.setdefault("required", []).append(key.split(".")[-1])
        elif key not in ("name",):
            prop["default"] = r["default"]
        if key == "accuracy.train":
            prop = node["properties"].get("train", {}) | {k: v for k, v in prop.items() if k != "type"} | {
                "type": "object", "additionalProperties": False}
            prop.setdefault("properties", {})
        node["properties"][key.split(".")[-1]] = prop
    return root


def _spec(args: argparse.Namespace) -> int:
    if args.schema:
        import json

        print(json.dumps(spec_schema(), indent=1))
        return 0
    print(spec_markdown() if args.markdown else spec_example(), end="")
    return 0


def _columns(args: argparse.Namespace) -> int:
    from jaqmoo.reporting.columns import columns_markdown, columns_text

    print(columns_markdown() if args.markdown else columns_text(), end="" if args.markdown else "\n")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``spec`` and ``columns`` sub-commands."""
    p = sub.add_parser("spec", help="print a commented experiment spec template with every key at its default",
                       description="Print a YAML experiment spec holding every key at its default, each with its "
                                   "type, unit and meaning in a comment (a valid spec as printed), with "
                                   "--markdown the same reference as a table, or with --schema its JSON Schema.")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--example", action="store_true", help="the commented YAML template (the default)")
    group.add_argument("--markdown", action="store_true", help="the reference as a Markdown table")
    group.add_argument("--schema", action="store_true",
                       help="the JSON Schema (draft 2020-12) of a spec, generated from the code (types and defaults "
                            "from the spec's dataclasses, ranges and choices from the reader's own checks), for "
                            "editors that complete and check YAML")
    p.set_defaults(func=_spec)

    p = sub.add_parser("columns", help="list the output columns (front.csv, evaluations.csv, sweep summary) "
                                       "with units and meanings",
                       description="The column dictionary: every column of front.csv / evaluations.csv and a "
                                   "sweep's fronts.csv / summary.csv, with its unit and meaning.")
    p.add_argument("--markdown", action="store_true", help="print docs/columns.md (a Markdown table)")
    p.set_defaults(func=_columns)
