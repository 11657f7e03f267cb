"""ipums-usa: one datefmt, the conda package, next to tabular 2."""
import datefmt
import tabular

assert datefmt.__version__ == "1.0.0", datefmt.__version__
assert tabular.__version__ == "2.0.0", tabular.__version__
print("datefmt OK")
