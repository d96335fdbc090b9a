"""Multi-scale superpixel sampling, registered like any third-party explanation method."""
from explain_plugin.hookspecs import hookimpl


@hookimpl
def register_explain_methods(register) -> None:
    from explain_plugin.methods.segments import Segments

    register(Segments)
