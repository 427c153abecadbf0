"""The layers' errors, typed so that code written for torch.nn catches them too.

torch.nn raises RuntimeError for most bad inputs and states (a wrong size, a wrong shape, no
time steps), ValueError for an input of another dtype, TypeError for a size that is not an int.
rnnkit's messages say more; their classes derive from what rnnkit always raised and from what
torch.nn raises, so ``except RuntimeError`` around a torch.nn layer still catches them.
"""


class InputError(ValueError, RuntimeError):
    """A bad input, state, ``lengths`` or ``reset`` given to a layer or cell."""


class InputTypeError(TypeError, ValueError, RuntimeError):
    """An input or state of the wrong type or dtype."""


class ArgumentError(ValueError, TypeError):
    """A constructor argument of the wrong type or value."""
