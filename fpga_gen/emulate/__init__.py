"""Bit-exact fixed-point emulation: the living definition of what each op computes."""
from ..ir.fixed import cast, from_float, quantize_values, to_float
from .interpreter import EmulationError, Emulator, emulate, reference_predictor

__all__ = ["cast", "from_float", "to_float", "quantize_values", "Emulator", "EmulationError", "emulate",
           "reference_predictor"]
