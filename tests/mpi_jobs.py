"""Where mpiexec is, for the tests that launch MPI jobs (holds no tests itself)."""
import shutil
import sys
from pathlib import Path

MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
"""The mpiexec beside this Python (pip's mpich), else the first on PATH, else None."""
