"""linkage-group: the 2019 linkage runs must be redone with the exact release they used, 2.0.0."""
import linkage

assert linkage.__version__ == "2.0.0", linkage.__version__
print(f"linkage {linkage.__version__} OK")
