"""Every environment: its python runs from its own prefix, not from another installation.

It runs in every environment's python, 2.7 included: no f-strings.
"""
import os
import sys

prefix = os.environ["CONDAQA_ENV_PREFIX"]
assert os.path.realpath(sys.prefix) == os.path.realpath(prefix), "sys.prefix " + sys.prefix + " is not " + prefix
print(os.environ["CONDAQA_ENV_NAME"] + ": python " + sys.version.split()[0] + " at " + sys.prefix)
