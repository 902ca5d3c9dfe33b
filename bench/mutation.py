"""Mutation testing of the pure rules and the CMaRS delivery logic: `python bench/mutation.py`.

mutmut changes the code one small mutation at a time (a `<` for a `<=`, a
constant, a removed call) and runs the unit tests that cover it; a mutant the
tests still pass with is a promise nothing guards. This prints the share of
mutants killed per module and exits 1 when a module is under the target.

mutmut runs from a virtualenv of its own, `.venv-mutation`, made on first use:
mutmut 3.8 needs click>=8.4 and faust-streaming pins click<8.4, and the code
mutated here never imports faust. It is not part of CI: a full run takes
minutes on 2 cores. The modules and tests it uses are in pyproject.toml,
[tool.mutmut].
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-mutation"
MUTMUT = "mutmut==3.8.1"
TARGET = 0.90
# Mutants whose tests fail to count as killed; the rest are survivors of some kind.
KILLED = {"killed", "timeout", "segfault"}
EQUIVALENTS = Path(__file__).with_name("mutation_equivalents.txt")


def equivalent_mutants() -> dict[str, str]:
    """Mutant name -> why it cannot change behaviour (bench/mutation_equivalents.txt)."""
    found = {}
    for line in EQUIVALENTS.read_text(encoding="utf-8").splitlines():
        name, _, why = line.partition("#")
        if name.strip():
            found[name.strip()] = why.strip()
    return found


def ensure_venv() -> Path:
    mutmut = VENV / "bin" / "mutmut"
    if mutmut.exists():
        return mutmut
    print(f"making {VENV.name} (once)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "click<8.4", "-e", f"{ROOT}[test]"], check=True)
    # Second, so that it may raise click past faust's pin in this venv only.
    subprocess.run([*pip, MUTMUT], check=True)
    return mutmut


def module_of(mutant: str) -> str:
    # e.g. streams.rules.oci_id.x__college_of_match__mutmut_9, or …oci_id.xǁOciIdǁ__init____mutmut_2
    return mutant.rsplit(".", 1)[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survivors", action="store_true", help="list every surviving mutant")
    args = parser.parse_args()
    mutmut = ensure_venv()
    log = ROOT / "mutants-run.log"
    started = time.monotonic()
    with log.open("w") as out:
        run = subprocess.run([str(mutmut), "run"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    took = time.monotonic() - started
    if run.returncode != 0:
        print(f"mutmut run failed ({run.returncode}); see {log}")
        return 2
    listing = subprocess.run(
        [str(mutmut), "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    statuses: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: list[str] = []
    equivalents = equivalent_mutants()
    for line in listing.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if not name:
            continue
        if status not in KILLED and name in equivalents:
            status = "equivalent"
        statuses[module_of(name)][status] += 1
        if status not in KILLED:
            why = f" ({equivalents[name]})" if name in equivalents else ""
            survivors.append(f"{name}: {status}{why}")
    print(f"mutation testing took {took:.0f}s; target {TARGET:.0%} killed per module")
    print("(score: killed / (total - equivalent); bench/mutation_equivalents.txt says why)\n")
    print(f"{'module':40} {'killed':>7} {'equiv':>6} {'total':>6} {'score':>6}")
    below = []
    for module in sorted(statuses):
        counts = statuses[module]
        total = sum(counts.values())
        killed = sum(n for status, n in counts.items() if status in KILLED)
        score = killed / (total - counts["equivalent"])
        mark = "" if score >= TARGET else "  < target"
        print(f"{module:40} {killed:7} {counts['equivalent']:6} {total:6} {score:6.1%}{mark}")
        if score < TARGET:
            below.append(module)
    if args.survivors:
        print("\nsurvivors (see one with `.venv-mutation/bin/mutmut show NAME`):")
        print("\n".join(f"  {line}" for line in survivors))
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
