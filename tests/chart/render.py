"""Render charts/switchboard with Helm's own engine, offline, and parse the manifests.

The engine is Helm v4's Go SDK, reached through the `helm-python-sdk` package
(`import helm_python`): its wheel bundles `libhelm_c`, a C ABI over the Helm SDK, and
`Chart.render` runs the same code as `helm template` (values coalescing, values.schema.json
validation, the Go template engine with Sprig, `.Capabilities` of the SDK's default
Kubernetes version). No helm binary, cluster or network is involved.

One difference from the `helm template` command: the command first checks that every
dependency in Chart.yaml is vendored under charts/, whatever its condition, and our chart
declares the nats and redis subcharts without vendoring them. `Chart.render` has no such
check, so the chart renders here without `helm dependency build`; the subcharts' own
objects are absent even when nats.enabled / redis.enabled are true (and are left out on
purpose, unless --subcharts, where someone did vendor them).

    python -m tests.chart.render                          # the default values
    python -m tests.chart.render -f tests/chart/values/production.yaml --set logLevel=debug
"""

from __future__ import annotations

import argparse
import copy
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "switchboard"
RELEASE = "switchboard"
NAMESPACE = "switchboard"

__all__ = [
    "CHART",
    "NAMESPACE",
    "RELEASE",
    "components",
    "load_chart",
    "merge_values",
    "render",
    "render_manifests",
]


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's mergeMaps for -f files and --set: maps merge key by key, the rest is replaced."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _expand_dotted(values: dict[str, Any]) -> dict[str, Any]:
    """{"a.b": 1} -> {"a": {"b": 1}}, so set_values reads like --set keys."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            value = _expand_dotted(value)
        parts = key.split(".")
        for part in reversed(parts[1:]):
            value = {part: value}
        out = _merge(out, {parts[0]: value})
    return out


def merge_values(
    values_files: list[Path], set_values: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The user-supplied values an install with `-f FILE... --set ...` would pass.

    Each file is parsed by Helm's own YAML reader (sigs.k8s.io/yaml), so YAML 1.1 scalars
    and anchors read exactly as `helm -f` reads them.
    """
    merged: dict[str, Any] = {}
    for path in values_files:
        merged = _merge(merged, helm.values_from_yaml(Path(path).read_text()))
    if set_values:
        merged = _merge(merged, _expand_dotted(set_values))
    return merged


WHOLE_KEYS = ("ports", "extraServices")


def components(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each component's effective settings, as the chart's `switchboard.components` helper
    makes them: serviceDefaults overlaid by services.<name>, maps merged one level deep
    except ports and extraServices (values.yaml says so)."""
    out: dict[str, dict[str, Any]] = {}
    for name, given in values["services"].items():
        merged = copy.deepcopy(values["serviceDefaults"])
        for key, value in (given or {}).items():
            base = merged.get(key)
            if isinstance(value, dict) and isinstance(base, dict) and key not in WHOLE_KEYS:
                base.update(value)
            else:
                merged[key] = value
        out[name] = merged
    return out


def load_chart(*, subcharts: bool = False) -> helm.Chart:
    """Load charts/switchboard; without subcharts unless asked, even where someone ran
    `helm dependency build` (charts/switchboard/charts/), so renders are the same everywhere.
    """
    vendored = CHART / "charts"
    if subcharts or not vendored.is_dir():
        return helm.Chart.load(CHART)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / CHART.name
        shutil.copytree(CHART, copy, ignore=lambda d, _: ["charts"] if d == str(CHART) else [])
        return helm.Chart.load(copy)  # loaded into memory: the copy may go


def render_manifests(
    values: dict[str, Any],
    *,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    revision: int = 1,
    subcharts: bool = False,
) -> dict[str, str]:
    """Template path -> rendered text, for already merged user values.

    Raises helm_python.HelmValuesError when the values fail values.schema.json, and
    helm_python.HelmRenderError when a template fails (e.g. a `fail` or `required`).
    """
    with load_chart(subcharts=subcharts) as chart:
        return chart.render(
            values, name=release, namespace=namespace, revision=revision, is_install=True
        )


def render(
    values_files: list[Path],
    set_values: dict[str, Any] | None = None,
    *,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    revision: int = 1,
) -> list[dict[str, Any]]:
    """Render the chart with these values files (in order) and overrides; return the objects.

    `set_values` is applied last, like `--set`; its keys may be dotted
    ({"services.gateway.replicaCount": 3}). Empty documents and NOTES.txt are dropped.
    """
    manifests = render_manifests(
        merge_values(values_files, set_values),
        release=release,
        namespace=namespace,
        revision=revision,
    )
    objects: list[dict[str, Any]] = []
    for path in sorted(manifests):
        if not path.endswith((".yaml", ".yml")):
            continue
        for document in yaml.safe_load_all(manifests[path]):
            if document:
                objects.append(document)
    return objects


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.chart.render",
        description="Print the manifests of charts/switchboard, rendered by Helm's engine.",
    )
    parser.add_argument("-f", "--values", action="append", default=[], type=Path)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--name", default=RELEASE)
    parser.add_argument("--namespace", default=NAMESPACE)
    parser.add_argument("--revision", type=int, default=1)
    parser.add_argument(
        "--subcharts",
        action="store_true",
        help="also render the subcharts under charts/switchboard/charts/, if vendored",
    )
    args = parser.parse_args(argv)

    values = merge_values(args.values)
    for expression in args.set:
        values = _merge(values, helm.parse_set_string(expression))
    try:
        manifests = render_manifests(
            values,
            release=args.name,
            namespace=args.namespace,
            revision=args.revision,
            subcharts=args.subcharts,
        )
    except helm.HelmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in sorted(manifests):
        if not path.endswith((".yaml", ".yml")) or not manifests[path].strip():
            continue
        print(f"---\n# Source: {path}")
        print(manifests[path].strip("\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
