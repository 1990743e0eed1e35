"""The domain core never imports Prefect (STYLE.md): every module of genop, checked in a fresh process."""

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
