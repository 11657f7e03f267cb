"""`python -m condaqa`: the `condaqa` command, for a venv whose bin/ is not on PATH."""

import sys

from condaqa.cli import main

sys.exit(main())
