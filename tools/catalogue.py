#!/usr/bin/env python3
"""Writes the catalogue of the conformance suite (docs/conformance.md) from the test docstrings.

Every test function under scripts/conformance carries a docstring of this form:

    One or more sentences: the purpose.

    Spec: NVMe 2.0 base spec 5.24 Sanitize (may continue on the next lines).

    Steps:
    1. First step (may continue on indented lines).
    2. ...

    python3 tools/catalogue.py                    write docs/conformance.md
    python3 tools/catalogue.py --output FILE      write FILE instead
    python3 tools/catalogue.py --check            list test functions without such a docstring
                                                  (exit status 1 if there is one)

Only the standard library is used: the files are parsed, not imported.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "scripts" / "conformance"
OUTPUT = ROOT / "docs" / "conformance.md"

STEP = re.compile(r"^(\d+)\.\s+(.*)$")


@dataclass
class Entry:
    """One test function and what its docstring says."""

    folder: str
    file: str
    name: str
    line: int
    params: list[str] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)
    purpose: str = ""
    spec: str = ""
    steps: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _paragraph(lines: list[str]) -> str:
    """The first paragraph of `lines`, joined into one line."""
    out: list[str] = []
    for line in lines:
        if not line.strip():
            if out:
                break
            continue
        out.append(line.strip())
    return " ".join(out)


def _steps(lines: list[str]) -> tuple[list[str], list[str]]:
    """Numbered steps (continuation lines joined) and the problems found."""
    steps: list[str] = []
    for line in (raw.strip() for raw in lines):
        m = STEP.match(line)
        if m:
            if int(m.group(1)) != len(steps) + 1:
                return [], [f"step {m.group(1)} out of order"]
            steps.append(m.group(2))
        elif line and steps:
            steps[-1] += " " + line
    return steps, []


def parse_docstring(doc: str | None) -> tuple[str, str, list[str], list[str]]:
    """Returns (purpose, spec, steps, problems) of a test docstring."""
    if not doc:
        return "", "", [], ["no docstring"]
    lines = doc.strip().splitlines()
    spec_at = next((i for i, x in enumerate(lines) if x.strip().startswith("Spec:")), None)
    steps_at = next((i for i, x in enumerate(lines) if x.strip() == "Steps:"), None)
    first_section = min(i for i in (spec_at, steps_at, len(lines)) if i is not None)
    purpose = _paragraph(lines[:first_section])
    spec = ""
    if spec_at is not None:
        body = [lines[spec_at].strip()[len("Spec:") :], *lines[spec_at + 1 :]]
        spec = _paragraph(body)
    steps, problems = _steps(lines[steps_at + 1 :]) if steps_at is not None else ([], [])
    if problems:
        return "", "", [], problems
    if not purpose:
        problems.append("no purpose")
    if not spec:
        problems.append("no 'Spec:' section")
    if not steps:
        problems.append("no numbered 'Steps:'")
    return purpose, spec, steps, problems


def decorator_info(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[list[str], list[str]]:
    """The parametrize argument names and the other pytest markers of a function."""
    params: list[str] = []
    markers: list[str] = []
    for d in fn.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        name = ast.unparse(target)
        if not name.startswith("pytest.mark."):
            continue
        mark = name[len("pytest.mark.") :]
        if mark == "parametrize" and isinstance(d, ast.Call) and d.args:
            first = d.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                params.append(first.value)
        else:
            markers.append(mark)
    return params, markers


def collect(suite: Path = SUITE) -> list[Entry]:
    """Every module-level and class-level test function of the suite, in file order."""
    entries: list[Entry] = []
    for path in sorted(suite.rglob("test_*.py")):
        rel = path.relative_to(suite)
        folder = str(rel.parent) if str(rel.parent) != "." else "(top)"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        nodes: list[ast.AST] = list(tree.body)
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                nodes.extend(node.body)
        for node in nodes:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "test_"
            ):
                purpose, spec, steps, problems = parse_docstring(ast.get_docstring(node))
                params, markers = decorator_info(node)
                entries.append(
                    Entry(
                        folder=folder,
                        file=rel.name,
                        name=node.name,
                        line=node.lineno,
                        params=params,
                        markers=markers,
                        purpose=purpose,
                        spec=spec,
                        steps=steps,
                        problems=problems,
                    )
                )
    return entries


def module_summary(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    if not doc:
        return ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(entries: list[Entry], suite: Path = SUITE) -> str:
    documented = [e for e in entries if not e.problems]
    out = [
        "# Conformance suite catalogue",
        "",
        "Generated by `make catalogue` (tools/catalogue.py) from the docstrings of the test "
        "functions under `scripts/conformance`; do not edit by hand.",
        "",
        f"{len(entries)} test functions in {len({(e.folder, e.file) for e in entries})} files; "
        f"{len(documented)} documented with purpose, spec section and steps"
        + (
            f", {len(entries) - len(documented)} without (listed by name only)."
            if len(documented) != len(entries)
            else "."
        ),
        "",
        "## Summary",
        "",
        "| folder | file | test | purpose | spec section |",
        "| --- | --- | --- | --- | --- |",
    ]
    for e in entries:
        out.append(
            f"| {cell(e.folder)} | {cell(e.file)} | `{e.name}` | {cell(e.purpose or '-')} "
            f"| {cell(e.spec or '-')} |"
        )
    folder = file = None
    for e in entries:
        if e.folder != folder:
            folder = e.folder
            file = None
            out += ["", f"## {folder}"]
        if e.file != file:
            file = e.file
            path = suite / (e.file if folder == "(top)" else f"{folder}/{e.file}")
            out += ["", f"### {file}", ""]
            summary = module_summary(path)
            if summary:
                out += [summary, ""]
        out += [f"#### `{e.name}`", ""]
        extra = []
        if e.params:
            extra.append("parametrized over " + ", ".join(f"`{p}`" for p in e.params))
        if e.markers:
            extra.append("markers: " + ", ".join(f"`{m}`" for m in e.markers))
        if e.problems:
            out += ["(no catalogue docstring)", ""]
            if extra:
                out += ["- " + "; ".join(extra), ""]
            continue
        out += [f"- Purpose: {e.purpose}", f"- Spec: {e.spec}"]
        if extra:
            out.append("- " + "; ".join(extra))
        out += ["- Steps:"]
        out += [f"  {i}. {s}" for i, s in enumerate(e.steps, 1)]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--output", type=Path, default=OUTPUT, help="Markdown file to write")
    ap.add_argument("--suite", type=Path, default=SUITE, help="folder of the suite")
    ap.add_argument("--check", action="store_true", help="list undocumented test functions")
    args = ap.parse_args(argv)
    entries = collect(args.suite)
    if args.check:
        bad = [e for e in entries if e.problems]
        for e in bad:
            print(f"{e.folder}/{e.file}:{e.line}: {e.name}: {', '.join(e.problems)}")
        print(f"{len(entries) - len(bad)} of {len(entries)} test functions documented")
        return 1 if bad else 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(entries, args.suite), encoding="utf-8")
    print(f"{args.output}: {len(entries)} test functions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
