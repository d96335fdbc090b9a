"""RISE, registered like any third-party explanation method."""
from explain_plugin.hookspecs import hookimpl


@hookimpl
def register_explain_methods(register) -> None:
    from explain_plugin.methods.rise import Rise

    register(Rise)
