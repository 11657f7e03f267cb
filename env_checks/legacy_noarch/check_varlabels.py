"""ipums-international: the internal varlabels package loads beside tabular."""
import tabular
import varlabels

assert varlabels.describe() == "varlabels 0.2.0", varlabels.describe()
assert tabular.__version__ == "1.1.0", tabular.__version__
print("varlabels OK")
