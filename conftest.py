pytest_plugins = ["condaqa.plugin"]
