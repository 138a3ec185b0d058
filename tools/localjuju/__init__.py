"""localjuju: a local stand-in for the Juju agent, used to test the charm on this machine.

`localjuju.Model(home, name)` is the Python API; `python -m localjuju <verb>` the CLI.
The package is test tooling and is never shipped inside the charm.
"""


def __getattr__(name):
    # lazy, so the hook tools (which import localjuju.state) stay cheap to start
    if name in ('Model', 'LocalJujuError'):
        from . import model
        return getattr(model, name)
    raise AttributeError(name)
