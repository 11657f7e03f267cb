"""data-integration: the data layer is a 0.4 release (0.4.0 was withdrawn; 0.4.1 replaces it)."""
import ipumsdata

assert ipumsdata.__version__.startswith("0.4."), ipumsdata.__version__
print(f"ipumsdata {ipumsdata.__version__} OK")
