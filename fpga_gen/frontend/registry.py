"""A frontend's handler registry: one function per source class (a Keras layer class, an ONNX op type, ...).

    LAYERS = Registry("layer")

    @LAYERS.register("Dense", "QDense")
    def _dense(layer, ctx): ...

    fn = LAYERS.lookup("Dense")        # or FrontendError: "unsupported layer 'Foo'; supported: Dense, QDense"

Every frontend (Keras today; HGQ2 and QONNX next) keeps one Registry of its handlers, so what a frontend
supports can be listed and tested (``names()``), and an unsupported class fails in one line naming the
alternatives.  A frontend imports only :mod:`fpga_gen.ir` and this package.
"""

from __future__ import annotations

from typing import Callable

__all__ = ["Registry", "FrontendError"]


class FrontendError(ValueError):
    """A model that cannot be converted; the message names the file/layer and the fix."""


class Registry:
    def __init__(self, what: str):
        self.what = what                                  # "layer", "op", ...: the word of the error message
        self.handlers: dict[str, Callable] = {}

    def register(self, *names: str):
        """Decorator: ``fn`` handles every source class in ``names`` (a second handler for a name is an error)."""
        def deco(fn):
            for n in names:
                if n in self.handlers and self.handlers[n] is not fn:
                    raise ValueError(f"{self.what} {n!r} has two handlers: {self.handlers[n].__name__} and "
                                     f"{fn.__name__}")
                self.handlers[n] = fn
            return fn
        return deco

    def get(self, name: str) -> Callable | None:
        return self.handlers.get(name)

    def lookup(self, name: str) -> Callable:
        fn = self.handlers.get(name)
        if fn is None:
            raise FrontendError(f"unsupported {self.what} {name!r}; supported: {', '.join(self.names())}")
        return fn

    def names(self) -> list[str]:
        return sorted(self.handlers)

    def __contains__(self, name: str) -> bool:
        return name in self.handlers

    def __len__(self) -> int:
        return len(self.handlers)
