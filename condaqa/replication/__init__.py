"""Building an environment in an installation: the plan through an engine, post steps, pip."""
