"""Pages for people: one per environment owner (Markdown and HTML), the site overview, and sending them."""
