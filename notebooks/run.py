"""Execute the notebooks at their full settings and keep the executed copies.

The committed notebooks carry no outputs; this writes executed copies (tables,
figures) elsewhere, and prints each notebook's JSON summary. The settings come
from the environment as in the notebooks (``AGENTOPT_NB_SEEDS``,
``AGENTOPT_NB_HORIZON``, ``AGENTOPT_NB_METHODS``, ``AGENTOPT_NB_ROUTERS``).

    python notebooks/run.py                          # all three, into ./agentopt-notebooks/
    python notebooks/run.py routers_comparison --out /tmp/nb

At the defaults, on 2 shared cores: selectors about 2.5 min, routers about 3.5 min.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import nbclient
import nbformat

HERE = Path(__file__).resolve().parent
NAMES = ("tracking_quickstart", "selectors_comparison", "routers_comparison")


def run(name: str, out_dir: Path) -> Path:
    """Execute ``notebooks/<name>.ipynb`` (cwd ``notebooks/``); write the result to ``out_dir``."""
    nb = nbformat.read(HERE / f"{name}.ipynb", as_version=4)
    t0 = time.perf_counter()
    nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=3600, resources={"metadata": {"path": str(HERE)}}
    ).execute()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.ipynb"
    nbformat.write(nb, path)
    print(f"{name}: executed in {time.perf_counter() - t0:.1f} s → {path}")
    for cell in nb.cells:
        if "summary" in cell.get("metadata", {}).get("tags", []):
            text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
            checks = json.loads(text).get("checks")
            if checks:
                print(json.dumps(checks, indent=1))
    return path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help=f"some of {', '.join(NAMES)} (default: all)")
    p.add_argument("--out", default="agentopt-notebooks", help="where executed copies go")
    args = p.parse_args()
    unknown = sorted(set(args.names) - set(NAMES))
    if unknown:
        p.error(f"unknown notebook(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    for name in args.names or NAMES:
        run(name, Path(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
