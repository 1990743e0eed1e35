"""Architecture rules (STYLE.md): the domain core never imports Prefect (every module of genop, checked
in a fresh process), and only genop/lifecycle.py sets a case's state."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_genop_module_imports_prefect():
    code = (
        "import importlib, pkgutil, sys, genop\n"
        "names = [m.name for m in pkgutil.walk_packages(genop.__path__, 'genop.')\n"
        "         if '.migrations' not in m.name]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "assert len(names) > 20, names\n"
        "leaked = sorted(m for m in sys.modules if m == 'prefect' or m.startswith('prefect.'))\n"
        "assert not leaked, leaked[:5]\n"
        "print(len(names))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) > 20


QUERY_BUILDERS = frozenset({"select", "update", "delete", "insert", "text"})
"""sqlalchemy's statement builders: a statement built outside genop encodes a rule without a name."""
LAYERS = ("tasks", "flows", "genop_cli")
"""The Prefect layer and the CLI: they call named domain or repository functions (STYLE.md,
"Queries have names"), never build SQL."""


def query_problems(source: str, filename: str) -> list[str]:
    """Where a module imports a statement builder from sqlalchemy, or hands a session a built
    statement (``session.execute(...)``, ``session.scalars(...)``, ``session.scalar(...)``)."""
    import ast

    problems: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            problems += [f"{filename}:{node.lineno} imports {alias.name} from {node.module}"
                         for alias in node.names if alias.name in QUERY_BUILDERS]
        elif isinstance(node, ast.Attribute) and node.attr in QUERY_BUILDERS and \
                isinstance(node.value, ast.Name) and node.value.id in {"sqlalchemy", "sa"}:
            problems.append(f"{filename}:{node.lineno} uses {node.value.id}.{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in {"execute", "scalars", "scalar"} and node.args and \
                isinstance(node.args[0], ast.Call):
            problems.append(f"{filename}:{node.lineno} passes a built statement to .{node.func.attr}()")
    return problems


def test_tasks_flows_and_cli_build_no_queries():
    problems = [problem for layer in LAYERS for path in sorted((ROOT / layer).rglob("*.py"))
                for problem in query_problems(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))]
    assert problems == []


def test_the_query_check_finds_a_built_query():
    sample = (
        "from sqlalchemy import select, update\n"
        "from sqlalchemy.orm import Session\n"
        "import sqlalchemy as sa\n"
        "def refused(session: Session, key: str):\n"
        "    return session.scalar(select(OutboxMessage.status).where(OutboxMessage.key == key))\n"
        "def rows(session):\n"
        "    return session.execute(sa.delete(OutboxMessage))\n"
    )
    found = query_problems(sample, "tasks/sample.py")
    assert found == ["tasks/sample.py:1 imports select from sqlalchemy",
                     "tasks/sample.py:1 imports update from sqlalchemy",
                     "tasks/sample.py:5 passes a built statement to .scalar()",
                     "tasks/sample.py:7 passes a built statement to .execute()",
                     "tasks/sample.py:7 uses sa.delete"]
    clean = ("from sqlalchemy.exc import OperationalError\nfrom sqlalchemy.orm import Session\n"
             "def status(session: Session, case):\n    return refusal_letter_status(session, case)\n")
    assert query_problems(clean, "tasks/clean.py") == []


STATE_OWNER = "genop/lifecycle.py"
STATE_SCANNED = ("genop", "genop_cli", "flows", "tasks")
SAMPLE_ASSIGNMENTS = '''
case.state = CaseState.COMPLETED
case.state += "x"
first.state, second = "forwarded", 1
case.state: str = "forwarded"
Case(case_number="GEN-2026-000001", state="awaiting_consent")
models.Case(state="rejected")
session.execute(update(Case).where(Case.id == 1).values(state="forwarded"))
session.execute(update(Case).values({"state": "forwarded"}))
session.execute(update(Case).values({Case.state: "forwarded"}))
setattr(case, "state", "completed")
'''
SAMPLE_READS = '''
if case.state == CaseState.FORWARDED and run.state.is_final():
    list_cases(session, state="forwarded")
    IntakeOutcome("0001.json", "created", state=case.state)
    select(Case).where(Case.state.in_(["forwarded"]))
    getattr(case, "state")
'''


def _is_state_key(node: ast.expr | None) -> bool:
    return (isinstance(node, ast.Constant) and node.value == "state") or (
        isinstance(node, ast.Attribute) and node.attr == "state")


def state_assignments(source: str) -> list[int]:
    """Lines of ``source`` that set a case's state (STYLE.md "One lifecycle")."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(part, ast.Attribute) and part.attr == "state"
                   for target in targets for part in ast.walk(target)):
                lines.append(node.lineno)
        elif isinstance(node, ast.Call):
            callee = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            keywords = {keyword.arg for keyword in node.keywords}
            if callee in ("Case", "values") and "state" in keywords:
                lines.append(node.lineno)
            elif callee == "values" and any(isinstance(arg, ast.Dict) and any(map(_is_state_key, arg.keys))
                                            for arg in node.args):
                lines.append(node.lineno)
            elif callee == "setattr" and len(node.args) >= 2 and _is_state_key(node.args[1]):
                lines.append(node.lineno)
    return sorted(lines)


def test_the_state_detector_catches_every_way_of_setting_a_state():
    assert state_assignments(SAMPLE_ASSIGNMENTS) == list(range(2, 12))
    assert state_assignments(SAMPLE_READS) == []


OTHER_STATE_MACHINES = {"genop/disputes/records.py": "dispute"}
"""A dispute has its own states (genop.disputes.MOVES), set in one place: there, assignments to
``dispute.state`` are that lifecycle's, not a case's."""


def _own_state_lines(source: str, name: str) -> set[int]:
    return {node.lineno for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Assign) and all(
                isinstance(t, ast.Attribute) and t.attr == "state" and isinstance(t.value, ast.Name)
                and t.value.id == name for t in node.targets)}


def test_only_the_lifecycle_sets_a_case_state():
    """genop/lifecycle.py knows every legal move; other modules call it (STYLE.md "One lifecycle")."""
    files = [path for folder in STATE_SCANNED for path in sorted((ROOT / folder).rglob("*.py"))]
    assert len(files) > 40
    found = []
    for path in files:
        where = path.relative_to(ROOT).as_posix()
        if where == STATE_OWNER:
            continue
        source = path.read_text(encoding="utf-8")
        own = _own_state_lines(source, OTHER_STATE_MACHINES[where]) if where in OTHER_STATE_MACHINES else set()
        found += [f"{where}:{line}" for line in state_assignments(source) if line not in own]
    assert not found, f"a case's state is set outside {STATE_OWNER} (use genop.lifecycle.move): {found}"
