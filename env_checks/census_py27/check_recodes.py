"""census-team: the 1990 recodes still run on python 2.7, with their libraries compiled for it.

The recodes were never ported: the check must run on 2.7 (no f-strings) and says so first.
"""
import os
import sys

import fixedwidth
import tabular

assert sys.version_info[:2] == (2, 7), "the recodes run on python 2.7, not " + sys.version.split()[0]
assert fixedwidth.__version__ == "0.4.0", fixedwidth.__version__
assert tabular.describe() == "tabular 1.1.0", tabular.describe()
# python 2 reads bytecode beside its source, where the build compiled it for this interpreter
assert os.path.isfile(os.path.splitext(tabular.__file__)[0] + ".pyc"), "no bytecode beside " + tabular.__file__
print("recodes OK on python " + sys.version.split()[0])
