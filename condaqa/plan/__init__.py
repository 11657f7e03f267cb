"""From a spec to a buildable plan: the plan model, entry parsing, the sanitation rules, and
the planning that picks an environment's spec and consults the site."""
