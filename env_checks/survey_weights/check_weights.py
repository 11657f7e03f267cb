"""methods-unit: the pip-installed surveyweights package is importable next to tabular."""
import surveyweights
import tabular

assert surveyweights.__version__ == "0.3.0"
assert tabular.__version__ == "2.0.0"
print("weights OK")
