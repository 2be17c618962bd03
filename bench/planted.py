"""Planted bugs judged the way code in a child process must be: mutmut's mutants (its
operators), each applied in turn to a scratch copy of the tree, judged by the tests a plan
names for its function, run as the suite runs them (``pytest -x -n 2``).

mutmut credits a test to a mutant only for code the test process ran itself (its
trampolines): what runs in a download process forked from the zygote, or in a served
process, is never judged by it (``bench/README.md``, Mutation testing). Here the mutant is
the code, in every process the tests start.

    bench/planted.py PLAN [--only TEXT] [--every N] [--results FILE] [--scratch DIR]

PLAN: one line per function, ``SOURCE FUNCTION TEST...`` (``FUNCTION``: ``name`` or
``Class.name``; ``-`` for the module's own statements, its constants); the tests in the order
to run them (the quickest to fail first: ``-x`` stops there). Those before a ``|`` run first,
in one process (``-n 0``: xdist's start is most of a quick test's time). ``--only``: the
mutants whose name holds TEXT. ``--every N``: every Nth mutant of the whole plan, counted in
its order (a sample for the time at hand; the same plan gives the same sample). Each verdict
is appended to ``--results`` (JSON lines), and a run with the same file goes on where it
stopped. The scratch copy has an environment of its
own that reads the tree's packages: the editable install would hand a process started with
``-I`` (the download processes) the worktree's code, not the mutant.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import libcst as cst

HERE = Path(__file__).resolve().parent.parent
COPIED = ("appliance", "tests", "pyproject.toml", "README.md", "docs", "systemd")
# A mutant whose tests run past this is counted caught, as mutmut counts a timeout.
TIMEOUT = 600
log = logging.getLogger("planted")


def scratch_tree(scratch: Path) -> Path:
    """``scratch`` holding a fresh copy of the tree and an interpreter that imports it."""
    for name in COPIED:
        shutil.rmtree(scratch / name, ignore_errors=True)
        source = HERE / name
        if source.is_dir():
            shutil.copytree(source, scratch / name, symlinks=False,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, scratch / name)
    (scratch / "setup.cfg").write_text("[mutmut]\nsource_paths = appliance\n")
    python = scratch / "venv" / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(scratch / "venv")],
                       check=True)
        site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path"
                               "('purelib'))"], capture_output=True, text=True,
                              check=True).stdout.strip()
        # the tree first, then the packages of this environment (not its editable install)
        Path(site, "planted.pth").write_text(f"{scratch}\n{sysconfig.get_path('purelib')}\n")
        for program in Path(sys.executable).parent.iterdir():  # deno beside the interpreter
            if not (python.parent / program.name).exists():
                (python.parent / program.name).symlink_to(program.resolve())
    return python


def _key(node: cst.CSTNode | None, module: cst.Module) -> str:
    if not isinstance(node, cst.FunctionDef):
        return "-"
    for statement in module.body:
        if isinstance(statement, cst.ClassDef) and node in statement.body.body:
            return f"{statement.name.value}.{node.name.value}"
    return node.name.value


def mutants(source: str, function: str) -> Iterator[tuple[str, str, str]]:
    """Each mutant of ``function`` in ``source``: its name (as mutmut names it), its whole
    code and its diff."""
    from mutmut.mutation.file_mutation import create_mutations  # needs setup.cfg's [mutmut]

    code = Path(source).read_text()
    module, found, _, _ = create_mutations(source, code)
    mangled = "x_" + function if "." not in function else "xǁ" + function.replace(".", "ǁ")
    number = 0
    for mutation in found:
        if _key(mutation.contained_by_top_level_function, module) != function:
            continue
        number += 1
        name = f"{source[:-3].replace('/', '.')}.{mangled}__mutmut_{number}"
        mutated = module.deep_replace(mutation.original_node, mutation.mutated_node).code
        diff = "".join(line for line in difflib.unified_diff(
            code.splitlines(True), mutated.splitlines(True), n=0) if line[0] in "+-"
            and not line.startswith(("+++", "---")))
        yield name, mutated, diff


def judge(python: Path, scratch: Path, source: str, mutated: str, tests: list[str]
          ) -> tuple[str, float]:
    """The mutant's verdict: killed, survived, timeout (counted caught) or error."""
    target = scratch / source
    original = target.read_text()
    cached = target.parent / "__pycache__"
    started = time.monotonic()
    try:
        target.write_text(mutated)
        for pyc in cached.glob(f"{target.stem}.*"):  # a mutant of the same size and second
            pyc.unlink()
        verdict = "survived"
        for tier, jobs in ((tests[:tests.index("|")], "0"), (tests[tests.index("|") + 1:], "2")
                           ) if "|" in tests else ((tests, "2"),):
            run = subprocess.run([str(python), "-m", "pytest", "-x", "-q", "-n", jobs,
                                  "-p", "no:cacheprovider", *tier], cwd=scratch,
                                 capture_output=True, timeout=TIMEOUT, check=False)
            # (-x under xdist ends a run that failed as interrupted, 2)
            failed = run.returncode == 1 or (run.returncode == 2 and b"FAILED " in run.stdout)
            verdict = "killed" if failed else "survived" if run.returncode == 0 else "error"
            if verdict == "error":
                log.warning("pytest ended with %s:\n%s", run.returncode, run.stdout[-2000:])
            if verdict != "survived":
                break
    except subprocess.TimeoutExpired:
        verdict = "timeout"
    finally:
        target.write_text(original)
        for pyc in cached.glob(f"{target.stem}.*"):
            pyc.unlink()
    return verdict, time.monotonic() - started


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("plan", type=Path)
    parser.add_argument("--only", default="")
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--results", type=Path, default=Path("planted.jsonl"))
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/planted"))
    args = parser.parse_args()
    args.results = args.results.resolve()  # (the runs' working directory is the scratch's)
    plan = [line.split() for line in args.plan.read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    done = {}
    if args.results.exists():
        done = {r["name"]: r for r in map(json.loads, args.results.read_text().splitlines())}
    args.scratch.mkdir(parents=True, exist_ok=True)
    python = scratch_tree(args.scratch)
    os.chdir(args.scratch)
    counted = 0
    for source, function, *tests in plan:
        for name, mutated, diff in mutants(source, function):
            counted += 1
            if name in done or args.only not in name or counted % args.every:
                continue
            verdict, took = judge(python, args.scratch, source, mutated, tests)
            done[name] = {"name": name, "verdict": verdict, "seconds": round(took, 1),
                          "diff": diff}
            with args.results.open("a") as out:
                out.write(json.dumps(done[name]) + "\n")
            log.info("%-9s %s (%.0f s)%s", verdict, name, took,
                     "" if verdict in ("killed", "timeout") else "\n" + diff)
    verdicts = [r["verdict"] for r in done.values()]
    caught = verdicts.count("killed") + verdicts.count("timeout")
    log.info("caught %d of %d judged (%.1f %%): killed %d, timeout %d, survived %d, error %d",
             caught, len(verdicts), 100 * caught / max(1, len(verdicts)),
             verdicts.count("killed"), verdicts.count("timeout"), verdicts.count("survived"),
             verdicts.count("error"))


if __name__ == "__main__":
    main()
