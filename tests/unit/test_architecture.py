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


def test_only_the_lifecycle_sets_a_case_state():
    """genop/lifecycle.py knows every legal move; other modules call it (STYLE.md "One lifecycle")."""
    files = [path for folder in STATE_SCANNED for path in sorted((ROOT / folder).rglob("*.py"))]
    assert len(files) > 40
    found = [f"{path.relative_to(ROOT)}:{line}" for path in files
             if path.relative_to(ROOT).as_posix() != STATE_OWNER
             for line in state_assignments(path.read_text(encoding="utf-8"))]
    assert not found, f"a case's state is set outside {STATE_OWNER} (use genop.lifecycle.move): {found}"
