"""JupyterHub admins: the libraries notebooks import at start-up are the expected ones."""
import datefmt
import tabular

assert tabular.__version__ == "2.0.0"
assert datefmt.describe() == "datefmt 1.0.0"
print("kernel libraries OK")
