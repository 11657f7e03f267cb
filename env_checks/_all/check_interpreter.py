"""Every environment: its python runs from its own prefix, not from another installation."""
import os
import sys

prefix = os.environ["CONDAQA_ENV_PREFIX"]
assert os.path.realpath(sys.prefix) == os.path.realpath(prefix), f"sys.prefix {sys.prefix} is not {prefix}"
print(f"{os.environ['CONDAQA_ENV_NAME']}: python {sys.version.split()[0]} at {sys.prefix}")
