"""Rescue: the exact package a pin names, found in production when the site's channels lost it."""
