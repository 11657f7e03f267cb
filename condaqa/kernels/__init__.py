"""Jupyter kernel specs of the site: where they are, which environment each runs, and starting them."""
