"""The built-in OpenVINO launcher (``datum model add -l openvino``)."""
from explain_plugin.hookspecs import hookimpl


@hookimpl
def register_launchers(register):
    # Imported here: openvino and datumaro load only when a command needs a launcher.
    from explain_plugin.launchers.openvino import OpenVinoLauncher

    register(OpenVinoLauncher)
