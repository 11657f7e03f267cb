"""hlink owners: the internal linkage package from the mpc channel loads with its data layer."""
import ipumsdata
import linkage

assert linkage.describe() == "linkage 2.2.0"
assert ipumsdata.__version__ == "0.5.0"
print("linkage OK")
