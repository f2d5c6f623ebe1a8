"""Mutation testing of the shared package and the handlers: does a test fail when a guard breaks?

    .venv/bin/python bench/mutate.py [--jobs 2] [--files orders.py,resume.py] [--tests tests/unit] [--merge]

(`make mutate` installs requirements-mutate.txt and runs this under `nice`.) Not a test and not part of
`make test`: it prints figures and writes bench/results/mutation.json, like the other bench scripts.

1. Mutants: Cosmic Ray's operators (comparisons, and/or, `not`, True/False, numbers, arithmetic,
   exception handlers, decorators, loops) make one single-token change each to every module under
   functions/shared/serverlesspresso and every functions/*/app.py. One operator of ours adds what Cosmic
   Ray cannot see: the DynamoDB condition and update expressions are strings, so `AND`/`OR`,
   comparators, `attribute_(not_)exists` and `if_not_exists` inside them are mutated too. Changes inside
   type annotations are skipped (never evaluated: `from __future__ import annotations`).
2. Test selection: the test suite runs once under coverage.py with one dynamic context per test, so
   each line knows the tests that ran it. A mutant runs only the tests that ran its statement (all of
   its lines: coverage.py records a multi-line statement under some of them only): the most focused
   test functions first (fewest lines of the package run), at most --max-tests functions with all
   their cases, stopping at the first failure. A change run at import (module constants such as the
   condition expressions, decorators, class bodies) runs the tests that ran the functions using the
   name it defines (the import itself is recorded under whichever test happened to import first), or
   every test of its module if no function uses it. A mutant no test reaches survives as "no tests".
3. Running: each mutant is written into a private copy of the work tree, and a process forked from
   one that has already imported pytest, boto3, moto and Powertools runs the selected tests there, so a
   mutant costs its tests' time, not an interpreter start. A mutant whose tests fail, error or exceed
   the time limit is killed.

Survivors judged equivalent (no test can tell them apart from the original) are listed, with why, in
bench/mutation_equivalents.md by the id this script prints; they are reported separately.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from bench.common import RESULTS, command_line, environment, table, write_results  # noqa: E402 - after the path setup above

PACKAGE = Path("functions/shared/serverlesspresso")
EQUIVALENTS = ROOT / "bench" / "mutation_equivalents.md"
RESULTS_FILE = RESULTS / "mutation.json"
# The modules whose guards the project's correctness rests on (issue 15's target: >= 95% killed).
GUARDED = ("orders.py", "resume.py", "ordering.py", "tracking.py", "identity.py", "shop.py")
# Functions whose mutants are authorization mutants (target: 100% killed).
AUTHORIZATION = {
    "caller_from_claims",
    "is_barista",
    "parse_groups",
    "require_barista",
    "get_order_for",
    "_load_owned",
    "claim_order",
    "release_order",
    "complete_order",
    "cancel_by_barista",
    "update_shop_config",
    "decode_page_token",
}
COMPARISONS = {
    "Eq": ("NotEq",),
    "NotEq": ("Eq",),
    "Lt": ("LtE", "GtE"),
    "LtE": ("Lt", "Gt"),
    "Gt": ("GtE", "LtE"),
    "GtE": ("Gt", "Lt"),
    "Is": ("IsNot",),
    "IsNot": ("Is",),
}
BINARY = {"Add": "Sub", "Sub": "Add", "Mul": "Div", "Div": "Mul", "Mod": "Mul", "BitOr": "BitAnd"}
OPERATORS = (
    *(f"core/ReplaceComparisonOperator_{a}_{b}" for a, targets in COMPARISONS.items() for b in targets),
    *(f"core/ReplaceBinaryOperator_{a}_{b}" for a, b in BINARY.items()),
    "core/ReplaceUnaryOperator_USub_UAdd",
    "core/ReplaceUnaryOperator_Delete_Not",
    "core/AddNot",
    "core/ReplaceTrueWithFalse",
    "core/ReplaceFalseWithTrue",
    "core/ReplaceAndWithOr",
    "core/ReplaceOrWithAnd",
    "core/ReplaceBreakWithContinue",
    "core/ReplaceContinueWithBreak",
    "core/ExceptionReplacer",
    "core/NumberReplacer",
    "core/RemoveDecorator",
    "core/ZeroIterationForLoop",
)
EXPRESSION_OPERATOR = "expression/DynamoDBExpression"
CONDITION_OPERATORS = ("Comparison", "AndWith", "OrWith", "AddNot", "Delete_Not", "DynamoDB", "TrueWith")
# A line of a DynamoDB expression: placeholders (:x) or attribute functions, and some keyword.
EXPRESSION_HINT = re.compile(r"(:\w|#\w|attribute_\w+\(|if_not_exists\()")
EXPRESSION_EDITS: tuple[tuple[str, str], ...] = (
    (r" AND ", " OR "),
    (r" OR ", " AND "),
    (r" < ", " <= "),
    (r" <= ", " < "),
    (r" > ", " >= "),
    (r" >= ", " > "),
    (r"(?<![<>])= (?=:)", "<> "),
    (r"\battribute_not_exists\(", "attribute_exists("),
    (r"\battribute_exists\(", "attribute_not_exists("),
    (r"\bif_not_exists\(\w+, (:\w+)\)", r"\1"),
)


# ----------------------------------------------------------------------------------------- mutants
@dataclass
class Mutant:
    """One single change to one file, and what the tests made of it."""

    file: str  # relative to the repository root
    operator: str
    occurrence: int
    line: int
    end_line: int
    function: str
    original: str  # the changed line(s) before
    mutated: str  # and after
    id: str = ""
    status: str = "pending"  # killed | survived | no tests | timeout | error
    tests_run: int = 0
    seconds: float = 0.0
    killed_by: str = ""
    equivalent: bool = False
    categories: list[str] = field(default_factory=list)
    # Where coverage can see the mutant: the lines of the statement it is in (coverage.py records a
    # multi-line statement under some of its lines only); for a change run at import, the lines that
    # use the name it defines (the import itself is recorded under whichever test imported first).
    seen_at: dict[str, list[int]] = field(default_factory=dict)  # file -> lines
    at_import: bool = False


def _expression_operator() -> Any:
    """Cosmic Ray operator: one edit of a DynamoDB expression inside a string literal."""
    import parso
    from cosmic_ray.operators.operator import Operator

    def is_update_expression(node: Any) -> bool:
        # `a = :b` in an UpdateExpression is an assignment, and a key condition allows only `=`:
        # `<>` there is a syntax error that any test reaching it reports, which proves nothing.
        text = node.value
        before = node.get_previous_leaf()
        key = before.get_previous_leaf() if before is not None else None
        return bool(
            re.search(r"\b(SET|REMOVE)\b|if_not_exists|list_append|,\s*[\"']?$|^[\"']\s*,", text)
            or (node.type == "fstring_string" and " AND " not in text)
            or (node.parent is not None and node.parent.type == "testlist_comp")
            or (key is not None and "KeyCondition" in getattr(key, "value", ""))
        )

    def edits(node: Any) -> list[str]:
        value = node.value
        if not EXPRESSION_HINT.search(value):
            return []
        found = []
        for pattern, replacement in EXPRESSION_EDITS:
            if replacement == "<> " and is_update_expression(node):
                continue
            for match in re.finditer(pattern, value):
                found.append(value[: match.start()] + match.expand(replacement) + value[match.end() :])
        return found

    class DynamoDBExpression(Operator):
        def mutation_positions(self, node: Any) -> Iterator[tuple[Any, Any]]:
            if node.type in ("string", "fstring_string"):
                for _ in edits(node):
                    yield (node.start_pos, node.end_pos)

        def mutate(self, node: Any, index: int) -> Any:
            value = edits(node)[index]
            if node.type == "string":
                return parso.python.tree.String(value, node.start_pos, node.prefix)
            return parso.python.tree.FStringString(value, node.start_pos, node.prefix)

        @classmethod
        def examples(cls) -> tuple[()]:
            return ()

    return DynamoDBExpression()


def _operator(name: str) -> Any:
    import cosmic_ray.plugins

    if name == EXPRESSION_OPERATOR:
        return _expression_operator()
    return cosmic_ray.plugins.get_operator(name)()


def _annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    spans = []
    for node in ast.walk(ast.parse(source)):
        annotations: list[ast.expr | None] = []
        if isinstance(node, ast.arg):
            annotations.append(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            annotations.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            annotations.append(node.annotation)
        for annotation in annotations:
            if annotation is not None and annotation.end_lineno is not None:
                spans.append(
                    (
                        (annotation.lineno, annotation.col_offset),
                        (annotation.end_lineno, annotation.end_col_offset or 0),
                    )
                )
    return spans


def _function_at(source: str) -> dict[int, str]:
    """Line -> the innermost function (or class) defined around it."""
    owner: dict[int, str] = {}
    nodes = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    for node in sorted(nodes, key=lambda n: n.lineno):  # outer first, inner overwrite
        for line in range(node.lineno, (node.end_lineno or node.lineno) + 1):
            owner[line] = node.name
    return owner


@cache
def _parsed(source: str) -> ast.Module:
    return ast.parse(source)


@cache
def _statements(source: str) -> tuple[list[ast.stmt], set[int]]:
    """Every statement, and the lines inside function bodies (the rest runs at import)."""
    tree = _parsed(source)
    statements = [node for node in ast.walk(tree) if isinstance(node, ast.stmt)]
    in_functions: set[int] = set()
    for node in statements:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            in_functions.update(range(node.body[0].lineno, (node.end_lineno or node.lineno) + 1))
    return statements, in_functions


def _first_line(statement: ast.stmt) -> int:
    """Where a statement starts, its decorators included."""
    decorators: list[ast.expr] = getattr(statement, "decorator_list", [])
    return min([statement.lineno, *(d.lineno for d in decorators)])


def _seen_at(
    relative: str, sources: dict[str, str], line: int, end_line: int
) -> tuple[dict[str, list[int]], bool]:
    """The lines (per file) whose coverage tells which tests can see a change to lines `line`..`end_line`
    of `relative`, and whether the change runs at import (see Mutant.seen_at)."""
    source = sources[relative]
    statements, in_functions = _statements(source)
    enclosing = [s for s in statements if _first_line(s) <= line <= (s.end_lineno or s.lineno)]
    if line in in_functions:
        innermost = max(enclosing, key=lambda s: s.lineno)
        compound = bool(getattr(innermost, "body", None))  # an if/for/with header: not its body
        last = end_line if compound else (innermost.end_lineno or innermost.lineno)
        return {relative: list(range(innermost.lineno, max(last, end_line) + 1))}, False
    # At import: a module constant, a class body, a decorator. The top-level statement names what
    # the change affects; the tests that run code using those names can see it.
    top = min(enclosing, key=_first_line) if enclosing else None
    names = _defined(top)
    # ... and what is built from them at import (a limit used in a model's field), transitively
    growing = True
    while growing:
        growing = False
        for statement in _parsed(source).body:
            loads = {
                node.id
                for node in ast.walk(statement)
                if isinstance(node, ast.Name) and node.lineno not in in_functions
            }
            if loads & names and not _defined(statement) <= names:
                names |= _defined(statement)
                growing = True
    # The methods of those classes (validators, helpers) run when the class is used.
    methods = {
        line
        for statement in _parsed(source).body
        if isinstance(statement, ast.ClassDef) and statement.name in names
        for line in range(statement.lineno, (statement.end_lineno or statement.lineno) + 1)
        if line in in_functions
    }
    module = f"serverlesspresso.{Path(relative).stem}"
    users: dict[str, list[int]] = {}
    for other, text in sources.items():
        tree = _parsed(text)
        if other != relative:  # only where the name is imported from this module
            imported = {
                alias.asname or alias.name
                for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module == module
                for alias in node.names
                if alias.name in names
            }
        else:
            imported = names
        functions = in_functions if other == relative else _statements(text)[1]
        lines = {
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.Name)
            and node.id in imported
            and isinstance(node.ctx, ast.Load)
            and node.lineno in functions
        }
        # A default argument is evaluated at import too, and is seen by the calls that leave it out:
        # the lines of the function whose signature uses the name.
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                isinstance(name, ast.Name) and name.id in imported
                for default in (*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None))
                for name in ast.walk(default)
            ):
                lines |= set(range(node.body[0].lineno, (node.end_lineno or node.lineno) + 1))
        if other == relative:
            lines |= methods
        if lines:
            users[other] = sorted(lines)
    return users, True


def _defined(statement: ast.stmt | None) -> set[str]:
    """The module-level names a top-level statement defines."""
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {statement.name}
    if isinstance(statement, ast.Assign | ast.AnnAssign):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        return {t.id for t in targets if isinstance(t, ast.Name)}
    return set()


def _not_a_change(source: str, mutated: str, start: tuple[int, int]) -> bool:
    """Cosmic Ray also "replaces" the bare `*` of keyword-only parameters (making them positional-only,
    which no keyword call notices) and sometimes writes code that does not compile: neither is a mutant."""
    line = source.splitlines()[start[0] - 1]
    if line[start[1] :].startswith("*") and line[start[1] + 1 :].lstrip()[:1] in (",", ")", ""):
        return True
    try:
        compile(mutated, "<mutant>", "exec")
    except SyntaxError:
        return True
    return False


def _all_files() -> list[Path]:
    """The files mutated: the shared package's modules and every handler."""
    files = sorted(p for p in (ROOT / PACKAGE).glob("*.py") if p.name != "__init__.py")
    return files + sorted((ROOT / "functions").glob("*/app.py"))


def generate(files: Sequence[Path]) -> list[Mutant]:
    """Every mutant of every file, except changes inside annotations and ones that change nothing."""
    from cosmic_ray.ast import ast_nodes, get_ast
    from cosmic_ray.mutating import mutate_code

    mutants: list[Mutant] = []
    seen: dict[str, int] = defaultdict(int)
    sources = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in _all_files()}
    for path in files:
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        spans = _annotation_spans(source)
        owners = _function_at(source)
        for name in (*OPERATORS, EXPRESSION_OPERATOR):
            operator = _operator(name)
            positions = [p for node in ast_nodes(get_ast(source)) for p in operator.mutation_positions(node)]
            for occurrence, (start, end) in enumerate(positions):
                if any(a <= tuple(start) < b for a, b in spans):
                    continue
                try:
                    mutated = mutate_code(source, operator, occurrence)
                except AttributeError:  # Cosmic Ray's ExceptionReplacer cannot edit `except (A, B)`
                    continue
                if mutated is None or mutated == source or _not_a_change(source, mutated, start):
                    continue
                new_lines = mutated.splitlines()
                changed = [
                    op
                    for op in difflib.SequenceMatcher(None, lines, new_lines).get_opcodes()
                    if op[0] != "equal"
                ]
                before = "\n".join(lines[changed[0][1] : changed[-1][2]]).strip() if changed else ""
                after = "\n".join(new_lines[changed[0][3] : changed[-1][4]]).strip() if changed else ""
                relative = str(path.relative_to(ROOT))
                mutant = Mutant(
                    file=relative,
                    operator=name,
                    occurrence=occurrence,
                    line=start[0],
                    end_line=end[0],
                    function=owners.get(start[0], "<module>"),
                    original=before,
                    mutated=after,
                )
                key = "|".join((relative, mutant.operator, " ".join(before.split()), " ".join(after.split())))
                seen[key] += 1  # the same change to an identical line elsewhere in the file
                mutant.id = hashlib.sha1(f"{key}|{seen[key]}".encode()).hexdigest()[:8]
                mutant.seen_at, mutant.at_import = _seen_at(relative, sources, mutant.line, mutant.end_line)
                mutant.categories = [
                    *(["condition"] if any(c in mutant.operator for c in CONDITION_OPERATORS) else []),
                    *(["authorization"] if mutant.function in AUTHORIZATION else []),
                ]
                mutants.append(mutant)
    return mutants


# ------------------------------------------------------------------------------------------ coverage
COVERAGE_CHILD = """
import json, sys, time
import coverage, pytest
root, data_file, durations_file, *paths = sys.argv[1:]
cov = coverage.Coverage(data_file=data_file, source=[root + "/functions"], branch=False)
durations, failed = {}, []
class PerTestContext:
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item):
        cov.switch_context(item.nodeid)
    def pytest_runtest_logreport(self, report):
        durations[report.nodeid] = durations.get(report.nodeid, 0.0) + report.duration
        if report.failed:
            failed.append(report.nodeid)
    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self, item):
        pass
cov.start()
code = pytest.main([*paths, "-q", "-p", "no:cacheprovider", "-o", "addopts=", "-W", "ignore"],
                   plugins=[PerTestContext()])
cov.stop()
cov.save()
json.dump({"durations": durations, "failed": failed, "exit": int(code)}, open(durations_file, "w"))
"""


@dataclass
class TestMap:
    """Which tests ran each line, and how long each test takes."""

    by_line: dict[str, dict[int, set[str]]]  # file -> line -> test node ids
    by_file: dict[str, set[str]]
    durations: dict[str, float]
    failing: set[str]

    def duration(self, test: str) -> float:
        """Seconds `test` took in the coverage run."""
        return self.durations.get(test, 0.0)

    def footprint(self, test: str) -> int:
        """How many lines of the mutated sources `test` runs."""
        if not hasattr(self, "_footprints"):
            counts: dict[str, int] = defaultdict(int)
            for lines in self.by_line.values():
                for tests in lines.values():
                    for name in tests:
                        counts[name] += 1
            self._footprints = counts
        return self._footprints[test]

    def select(self, mutant: Mutant, most: int) -> list[str]:
        """The tests that can see `mutant`, fastest first (at most `most` of them, if `most`)."""
        tests: set[str] = set()
        for file, seen_at in (
            mutant.seen_at or {mutant.file: list(range(mutant.line, mutant.end_line + 1))}
        ).items():
            lines = self.by_line.get(file, {})
            for line in seen_at:
                tests |= lines.get(line, set())
        import_time = mutant.at_import and not tests
        if import_time:  # run at import, its name used by no code in a function: every test of the module
            tests = set(self.by_file.get(mutant.file, set()))
        tests -= self.failing
        # The most focused test functions first (those that run the fewest lines of the package), then
        # the fastest; a cap counts functions, each with all its cases, so the test written for this
        # code is not crowded out by the many end-to-end tests that also pass through it, nor one
        # boundary case by its siblings.
        functions: dict[str, list[str]] = defaultdict(list)
        for test in sorted(tests, key=lambda test: (self.durations.get(test, 0.0), test)):
            functions[test.split("[", 1)[0]].append(test)
        ranked = sorted(
            functions.values(),
            key=lambda cases: (
                min(map(self.footprint, cases)),
                sum(self.durations.get(c, 0.0) for c in cases),
            ),
        )
        # A function runs with all its cases, also those coverage never saw here: a body that Pydantic
        # refuses (a bound in a Field) runs no line of the package, yet is the very case that fails when
        # the bound changes.
        cases_of: dict[str, list[str]] = defaultdict(list)
        for test in sorted(self.durations, key=lambda test: (self.durations[test], test)):
            if test not in self.failing:
                cases_of[test.split("[", 1)[0]].append(test)
        return [
            case
            for cases in (ranked[:most] if most else ranked)
            for case in cases_of.get(cases[0].split("[", 1)[0]) or cases
        ]


def collect_coverage(test_paths: Sequence[str], work: Path) -> TestMap:
    """Run the tests once under coverage.py with one context per test."""
    import subprocess

    import coverage

    data_file = work / "coverage.db"
    durations_file = work / "durations.json"
    subprocess.run(
        [sys.executable, "-c", COVERAGE_CHILD, str(ROOT), str(data_file), str(durations_file), *test_paths],
        cwd=ROOT,
        check=False,
        stdout=subprocess.DEVNULL,
    )
    run = json.loads(durations_file.read_text(encoding="utf-8"))
    data = coverage.CoverageData(basename=str(data_file))
    data.read()
    by_line: dict[str, dict[int, set[str]]] = {}
    by_file: dict[str, set[str]] = {}
    for measured in data.measured_files():
        relative = str(Path(measured).resolve().relative_to(ROOT))
        lines = {
            line: {test for test in tests if test}
            for line, tests in data.contexts_by_lineno(measured).items()
        }
        by_line[relative] = lines
        by_file[relative] = set().union(*lines.values()) if lines else set()
    return TestMap(by_line, by_file, run["durations"], set(run["failed"]))


def load_or_collect(test_paths: Sequence[str], work: Path, saved: Path | None) -> TestMap:
    """The test map from `saved` if it exists (it goes stale when tests change), else measured anew."""
    if saved is not None and saved.exists():
        raw = json.loads(saved.read_text(encoding="utf-8"))
        return TestMap(
            {f: {int(line): set(t) for line, t in lines.items()} for f, lines in raw["by_line"].items()},
            {f: set(t) for f, t in raw["by_file"].items()},
            raw["durations"],
            set(raw["failing"]),
        )
    tests = collect_coverage(test_paths, work)
    if saved is not None:
        raw = {
            "by_line": {
                f: {line: sorted(t) for line, t in lines.items()} for f, lines in tests.by_line.items()
            },
            "by_file": {f: sorted(t) for f, t in tests.by_file.items()},
            "durations": tests.durations,
            "failing": sorted(tests.failing),
        }
        saved.write_text(json.dumps(raw), encoding="utf-8")
    return tests


# ----------------------------------------------------------------------------------------- running
HEAVY_IMPORTS = (
    "boto3",
    "botocore.session",
    "moto",
    "moto.backends",
    "moto.core.models",
    "moto.stepfunctions.models",
    "moto.dynamodb.models",
    "moto.events.models",
    "moto.sqs.models",
    "pydantic",
    "aws_lambda_powertools",
    "aws_lambda_powertools.utilities.parser",
    "aws_lambda_powertools.event_handler",
    "jwt",
    "yaml",
    "pytest",
)


def _copy_tree(destination: Path) -> None:
    ignore = shutil.ignore_patterns(
        ".git", ".venv", ".venv-tools", ".aws-sam", "__pycache__", ".*_cache", "results", "mutants"
    )
    shutil.copytree(ROOT, destination, ignore=ignore, symlinks=True)


def _run_in_child(slot: Path, tests: Sequence[str], log: Path) -> int:
    """Fork; the child runs `tests` in `slot` with pytest and exits with pytest's code."""
    pid = os.fork()
    if pid:
        return pid
    try:
        os.setpgid(0, 0)
        descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(descriptor, 1)
        os.dup2(descriptor, 2)
        os.chdir(slot)
        sys.dont_write_bytecode = True
        banned = {str(ROOT), str(ROOT / "bench"), str(ROOT / "functions" / "shared")}
        sys.path[:] = [entry for entry in sys.path if entry not in banned]
        import pytest

        code = pytest.main(
            [
                *tests,
                "-x",
                "-q",
                "-p",
                "no:cacheprovider",
                "-o",
                "addopts=",
                "-W",
                "ignore",
                f"--rootdir={slot}",
                "-c",
                str(slot / "pyproject.toml"),
            ]
        )
        os._exit(int(code))
    except BaseException:  # the child must never return into the parent's loop
        os._exit(99)


def run_mutants(mutants: list[Mutant], tests: TestMap, jobs: int, most: int, work: Path) -> None:
    """Run every mutant's selected tests, `jobs` at a time, each in its own copy of the tree."""
    import importlib

    for module in HEAVY_IMPORTS:
        importlib.import_module(module)
    slots = []
    for index in range(jobs):
        slot = work / f"slot{index}"
        _copy_tree(slot)
        slots.append(slot)
    free = list(slots)
    running: dict[int, tuple[Mutant, Path, str, float, float]] = {}
    queue = list(mutants)
    done = 0
    started_all = time.monotonic()
    while queue or running:
        while queue and free:
            mutant = queue.pop(0)
            selected = tests.select(mutant, most)
            if not selected:
                mutant.status = "no tests"
                done += 1
                continue
            slot = free.pop()
            target = slot / mutant.file
            original = (ROOT / mutant.file).read_text(encoding="utf-8")
            target.write_text(_mutated_source(mutant, original), encoding="utf-8")
            budget = 60.0 + 3.0 * sum(tests.durations.get(test, 1.0) for test in selected)
            pid = _run_in_child(slot, selected, work / f"{slot.name}.log")
            mutant.tests_run = len(selected)
            running[pid] = (mutant, slot, original, time.monotonic(), budget)
        finished, status = os.waitpid(-1, os.WNOHANG)
        if not finished:
            for pid, (mutant, _, _, since, budget) in running.items():
                if time.monotonic() - since > budget:
                    os.killpg(pid, signal.SIGKILL)
                    mutant.status = "timeout"
            time.sleep(0.05)
            continue
        mutant, slot, original, since, _ = running.pop(finished)
        (slot / mutant.file).write_text(original, encoding="utf-8")
        free.append(slot)
        mutant.seconds = round(time.monotonic() - since, 2)
        code = os.waitstatus_to_exitcode(status)
        if mutant.status != "timeout":
            # 1: a test failed; 2-4: collection, internal or conftest import error, caused by the mutant.
            mutant.status = {0: "survived", 1: "killed", 2: "killed", 3: "killed", 4: "killed"}.get(
                code, "error"
            )
            if mutant.status == "killed":
                mutant.killed_by = _first_failure(work / f"{slot.name}.log")
        done += 1
        if mutant.status not in ("killed", "timeout"):
            elapsed = time.monotonic() - started_all
            print(
                f"  [{done}/{len(mutants)} {elapsed:.0f}s] {mutant.status}: {mutant.id} "
                f"{mutant.file}:{mutant.line} {mutant.operator}",
                flush=True,
            )


def _mutated_source(mutant: Mutant, original: str) -> str:
    from cosmic_ray.mutating import mutate_code

    mutated = mutate_code(original, _operator(mutant.operator), mutant.occurrence)
    assert mutated is not None, mutant
    return str(mutated)


def _first_failure(log: Path) -> str:
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    found = re.search(r"^(?:FAILED|ERROR) (\S+)", text, re.MULTILINE)
    return found.group(1) if found else ""


# ----------------------------------------------------------------------------------------- reports
def equivalent_ids() -> set[str]:
    """The ids listed in bench/mutation_equivalents.md (a bullet that starts with the id in backticks)."""
    if not EQUIVALENTS.exists():
        return set()
    return set(re.findall(r"^- `([0-9a-f]{8})`", EQUIVALENTS.read_text(encoding="utf-8"), re.MULTILINE))


def summary(mutants: Sequence[Mutant]) -> dict[str, Any]:
    """Per file and per group: mutants, killed, survived (with equivalents apart), kill rates."""

    def figures(group: Sequence[Mutant]) -> dict[str, Any]:
        killed = sum(m.status in ("killed", "timeout") for m in group)
        equivalent = sum(m.equivalent for m in group)
        meaningful = len(group) - equivalent
        return {
            "mutants": len(group),
            "killed": killed,
            "survived": sum(m.status == "survived" and not m.equivalent for m in group),
            "no_tests": sum(m.status == "no tests" and not m.equivalent for m in group),
            "equivalent": equivalent,
            "kill_rate": round(100.0 * killed / len(group), 1) if group else None,
            "kill_rate_of_non_equivalent": round(100.0 * killed / meaningful, 1) if meaningful else None,
        }

    by_file: dict[str, list[Mutant]] = defaultdict(list)
    for mutant in mutants:
        by_file[mutant.file].append(mutant)
    guarded = [m for m in mutants if Path(m.file).name in GUARDED and m.file.startswith(str(PACKAGE))]
    return {
        "files": {name: figures(group) for name, group in sorted(by_file.items())},
        "groups": {
            "all": figures(mutants),
            "guarded modules": figures(guarded),
            "conditions (guarded modules)": figures([m for m in guarded if "condition" in m.categories]),
            "authorization": figures([m for m in mutants if "authorization" in m.categories]),
        },
    }


def print_report(figures: dict[str, Any], mutants: Sequence[Mutant]) -> None:
    """The kill-rate table, then every survivor with its change."""
    headers = (
        "file",
        "mutants",
        "killed",
        "survived",
        "no tests",
        "equivalent",
        "killed %",
        "of non-equiv. %",
    )

    def row(name: str, f: dict[str, Any]) -> tuple[Any, ...]:
        return (
            name,
            f["mutants"],
            f["killed"],
            f["survived"],
            f["no_tests"],
            f["equivalent"],
            f["kill_rate"],
            f["kill_rate_of_non_equivalent"],
        )

    rows = [row(name.replace(str(PACKAGE) + "/", ""), f) for name, f in figures["files"].items()]
    rows += [row(f"[{name}]", f) for name, f in figures["groups"].items()]
    print(table(headers, rows))
    survivors = [m for m in mutants if m.status in ("survived", "no tests", "error")]
    print(
        f"\nSurvivors: {sum(not m.equivalent for m in survivors)} ({sum(m.equivalent for m in survivors)} "
        f"more judged equivalent in {EQUIVALENTS.relative_to(ROOT)})"
    )
    for mutant in survivors:
        if mutant.equivalent:
            continue
        print(
            f"- `{mutant.id}` {mutant.file.replace(str(PACKAGE) + '/', '')}:{mutant.line} "
            f"{mutant.function} {mutant.operator} [{mutant.status}]\n"
            f"    - {mutant.original}\n    + {mutant.mutated}"
        )


def main() -> None:
    """Generate, select, run, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at a time (default 2)")
    parser.add_argument("--files", default="", help="comma-separated file names to mutate (default: all)")
    parser.add_argument("--tests", default="tests/unit", help="comma-separated test paths")
    parser.add_argument(
        "--max-tests",
        type=int,
        default=30,
        help="at most this many covering test functions (with all their cases) per mutant; 0: all",
    )
    parser.add_argument("--test-map", help="reuse (or save) the per-test coverage in this JSON file")
    parser.add_argument(
        "--since",
        help="a previous mutation.json: mutants it killed count as killed without running (valid while "
        "tests were only added since)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other files' mutants from bench/results/mutation.json, so that per-file runs add "
        "up to one result (each file's figures from its latest run)",
    )
    parser.add_argument(
        "--combine",
        help="run nothing: merge these comma-separated mutation.json files (a later one's files replace an "
        "earlier one's), print the table and write bench/results/mutation.json",
    )
    parser.add_argument("--list", action="store_true", help="only list the mutants")
    args = parser.parse_args()
    if args.combine:
        runs, kept = merge_results([Path(path) for path in args.combine.split(",")], replaced=set())
        report_and_write(kept, runs)
        return
    files = _all_files()
    if args.files:
        wanted = set(args.files.split(","))
        files = [p for p in files if p.name in wanted or str(p.relative_to(ROOT)) in wanted]
    started = time.monotonic()
    mutants = generate(files)
    print(f"{len(mutants)} mutants of {len(files)} files", flush=True)
    if args.list:
        for mutant in mutants:
            print(f"{mutant.id} {mutant.file}:{mutant.line} {mutant.operator}: {mutant.mutated}")
        return
    if args.since:
        previous = json.loads(Path(args.since).read_text(encoding="utf-8"))
        killed_before = {m["id"]: m for m in previous["mutants"] if m["status"] in ("killed", "timeout")}
        for mutant in mutants:
            if mutant.id in killed_before:
                mutant.status = "killed"
                mutant.killed_by = killed_before[mutant.id]["killed_by"] or "(previous run)"
        print(
            f"{sum(m.status == 'killed' for m in mutants)} killed in {args.since}: not run again", flush=True
        )
    with tempfile.TemporaryDirectory(prefix="mutate-") as scratch:
        work = Path(scratch)
        tests = load_or_collect(args.tests.split(","), work, Path(args.test_map) if args.test_map else None)
        print(
            f"coverage: {len(tests.durations)} tests in {time.monotonic() - started:.0f} s"
            + (f"; failing before any mutation (not used): {sorted(tests.failing)}" if tests.failing else ""),
            flush=True,
        )
        equivalents = equivalent_ids()
        pending = [m for m in mutants if m.status == "pending" and m.id not in equivalents]
        for mutant in mutants:
            if mutant.status == "pending" and mutant.id in equivalents:
                mutant.status = "survived"  # judged equivalent: not run (no test can kill it)
        run_mutants(pending, tests, args.jobs, args.max_tests, work)
    this_run = {
        "files": sorted({str(p.relative_to(ROOT)) for p in files}),
        "command": command_line(),
        "environment": environment(),
        "seconds": round(time.monotonic() - started),
        "jobs": args.jobs,
        "max_tests": args.max_tests,
        "since": args.since,
    }
    runs, kept = [], []
    if args.merge and RESULTS_FILE.exists():
        runs, kept = merge_results([RESULTS_FILE], replaced=set(this_run["files"]))
    report_and_write([*kept, *mutants], [*runs, this_run])


def merge_results(paths: Sequence[Path], replaced: set[str]) -> tuple[list[dict[str, Any]], list[Mutant]]:
    """The runs and mutants stored in `paths`, a later file's mutants of a file replacing an earlier
    one's, less the mutants of the files in `replaced` (run again now)."""
    by_file: dict[str, list[Mutant]] = {}
    run_of: dict[str, dict[str, Any]] = {}
    legacy_keys = ("command", "environment", "seconds", "jobs", "max_tests", "since")
    for path in paths:
        document = json.loads(path.read_text(encoding="utf-8"))
        # A result written before runs were recorded is one run of all its files.
        runs = document.get("runs") or [
            {
                "files": sorted({m["file"] for m in document["mutants"]}),
                **{key: document.get(key) for key in legacy_keys},
            }
        ]
        fields = set(Mutant.__dataclass_fields__)
        mutants = [Mutant(**{k: v for k, v in m.items() if k in fields}) for m in document["mutants"]]
        for file in {m.file for m in mutants}:
            by_file[file] = [m for m in mutants if m.file == file]
            run_of[file] = next(run for run in runs if file in run["files"])
    kept = [m for file, group in sorted(by_file.items()) if file not in replaced for m in group]
    runs_kept: list[dict[str, Any]] = []
    for file in sorted(by_file):
        if file in replaced:
            continue
        run = run_of[file]
        if run not in runs_kept:
            runs_kept.append(run)
    # A kept run now stands for those of its files that are still its own.
    return [
        {**run, "files": [f for f in run["files"] if f in by_file and f not in replaced and run_of[f] is run]}
        for run in runs_kept
    ], kept


def report_and_write(mutants: list[Mutant], runs: list[dict[str, Any]]) -> None:
    """Mark the equivalents, print the table and the survivors, write bench/results/mutation.json."""
    equivalents = equivalent_ids()
    for mutant in mutants:
        mutant.equivalent = mutant.id in equivalents and mutant.status != "killed"
    figures = summary(mutants)
    print()
    print_report(figures, mutants)
    for run in runs:
        print(
            f"\n{', '.join(f.replace(str(PACKAGE) + '/', '') for f in run['files'])}: {run['seconds']} s with"
            f" {run['jobs']} jobs, "
            + (
                f"at most {run['max_tests']} test functions each"
                if run["max_tests"]
                else "every covering test"
            )
            + (f", kills reused from {run['since']}" if run["since"] else "")
            + f" (commit {(run['environment'] or {}).get('commit')}, {run['command']})"
        )
    path = write_results(
        "mutation",
        command_line(),
        {"runs": runs, **figures, "mutants": [asdict(m) for m in mutants]},
    )
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
