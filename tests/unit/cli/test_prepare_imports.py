"""The corpus-preparation command loads neither torch nor Lightning: its workers start fast."""

import subprocess
import sys


def test_the_prepare_command_imports_no_torch_or_lightning():
    code = (
        "import sys, framework.cli.prepare, framework.prepare.steps, framework.prepare.language; "
        "print(sorted(name for name in ('torch', 'pytorch_lightning', 'lightning_fabric') if name in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
