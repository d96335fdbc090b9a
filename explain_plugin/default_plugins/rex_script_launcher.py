"""The ReX-script launcher (``datum model add -l rex-script -- -s script.py``)."""
from explain_plugin.hookspecs import hookimpl


@hookimpl
def register_launchers(register):
    # Imported here: the script and its packages load only when a command needs it.
    from explain_plugin.launchers.rex_script import RexScriptLauncher

    register(RexScriptLauncher)
