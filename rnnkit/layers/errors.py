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


class NotScriptable:
    """Refuses ``torch.jit.script`` (which calls ``__prepare_scriptable__`` on a module and on
    every module inside it) in one line that names the way: TorchScript cannot compile rnnkit's
    hand-written time loop, and ``rnnkit.to_torch`` gives torch.nn's equivalent, which it can."""

    def __prepare_scriptable__(self):
        raise TypeError(f"torch.jit.script cannot compile rnnkit's {type(self).__name__}: "
                        f"script rnnkit.to_torch(model), a copy with torch.nn's layers and cells "
                        f"(the same weights), or use torch.jit.trace or torch.export")
