"""nhis_reformat owners: fixed-width reformatting still describes its inputs the same way."""
import codebook
import fixedwidth
import tabular

assert fixedwidth.__version__ == "0.4.0", fixedwidth.__version__
assert tabular.describe() == "tabular 1.1.0"
assert codebook.describe().startswith("codebook 1.2")
print("reformat pipeline libraries OK")
