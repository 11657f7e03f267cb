"""nhis-team: fixedwidth 0.3 reads the old layouts with tabular 1.1."""
import fixedwidth
import tabular

assert fixedwidth.describe() == "fixedwidth 0.3.0", fixedwidth.describe()
assert tabular.__version__ == "1.1.0", tabular.__version__
print("fixedwidth OK")
