from explain_plugin.cli import run

run()
