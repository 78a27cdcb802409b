"""umiak: a unikernel whose kernel is a Python program.

`Machine` is the embeddable API; it is imported lazily so that `import umiak`
stays cheap for the command line.
"""

__version__ = "0.1.0"
__all__ = ["Machine", "__version__"]


def __getattr__(name: str):
    if name == "Machine":
        from umiak.machine import Machine
        return Machine
    raise AttributeError(name)
