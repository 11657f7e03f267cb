"""Environment specs: conda's env file format, and exports from a prefix."""
