"""Generate the Python code for protos/ into gen/ (`make proto`).

Imports then read `from switchboard.v1 import tickets_pb2`. The generated files are not
committed and never edited by hand: this script is the only way they are made.
"""

from __future__ import annotations

import shutil
import sys
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTOS = ROOT / "protos"
GEN = ROOT / "gen"


def main() -> int:
    from grpc_tools import protoc

    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    if not sources:
        print("no .proto files under protos/", file=sys.stderr)
        return 1
    tmp = GEN.with_name("gen.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    well_known = str(resources.files("grpc_tools") / "_proto")
    args = [
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--python_out={tmp}",
        f"--pyi_out={tmp}",
        f"--grpc_python_out={tmp}",
        *sources,
    ]
    rc: int = protoc.main(args)
    if rc != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"protoc failed ({rc})", file=sys.stderr)
        return rc
    for folder in [tmp, *(p for p in tmp.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    (tmp / "__init__.py").unlink()  # gen/ itself is a path entry, not a package
    shutil.rmtree(GEN, ignore_errors=True)
    tmp.rename(GEN)
    print(f"generated {len(sources)} protos into {GEN.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
