"""methods-unit: the 2017 sampling schedules still run on python 3.6, with datefmt next to tabular 2.

No f-strings: on an older python it says which one it found instead of failing to compile.
"""
import sys

import datefmt
import tabular

assert sys.version_info[:2] == (3, 6), "the schedules run on python 3.6, not " + sys.version.split()[0]
assert datefmt.__version__ == "1.0.0", datefmt.__version__
assert tabular.__version__ == "2.0.0", tabular.__version__
print("schedules OK on python " + sys.version.split()[0])
