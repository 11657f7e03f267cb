"""Qualification as a fact of the library: the checks each environment needs (required.py), what each
recorded against which build, kept where only condaqa writes and signed (store.py), and the verdict
the cutover gate, `condaqa status` and the summary read (verdict.py); builds.py builds and records."""
