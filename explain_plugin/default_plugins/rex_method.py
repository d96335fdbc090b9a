"""ReX, registered like any third-party explanation method."""
from explain_plugin.hookspecs import hookimpl


@hookimpl
def register_explain_methods(register) -> None:
    from explain_plugin.methods.rex.method import Rex

    register(Rex)
