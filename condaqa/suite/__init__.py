"""The qualification suite, shipped with condaqa: `pytest --pyargs condaqa.suite --site PATH`.

Each test runs one kind of required check (qualification.py) for every environment that
needs it; the plugin parametrizes it and forwards its outcome. A site can keep tests of its
own beside it (the repository's tests/ holds the demo site's), using the same fixtures.
"""
