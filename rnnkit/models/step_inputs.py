"""The checks of a generative model's ``step(ids, state)`` (language model, conditional
generator, seq2seq decoder): one line that names the ids or the state as the caller gave them,
where the embedding, the stack or ``torch.cat`` would name their own inner tensors."""
import torch

from rnnkit.layers.errors import InputError


def check_ids(model, ids, rows=None):
    """``ids`` (B,) whole numbers, B = ``rows`` (the state's batch) where given; InputError
    otherwise. Shapes and dtypes only: the range is checked where the embedding raises
    (:func:`embed_ids`), so a good step pays no reduction over its ids."""
    name = f"{type(model).__name__}.step"
    if not isinstance(ids, torch.Tensor):
        raise InputError(f"{name}: ids must be a tensor of shape (batch,), got a "
                         f"{type(ids).__name__}")
    if ids.dim() > 1 or ids.dtype not in (torch.int64, torch.int32):   # (an unbatched id: 0-d)
        raise InputError(f"{name}: ids must be token ids of shape (batch,) (int64 or int32), "
                         f"got a {ids.dtype} tensor of shape {tuple(ids.shape)}")
    if rows is not None and ids.dim() == 1 and ids.shape[0] != rows:
        raise InputError(f"{name}: the state holds {rows} row(s), got {ids.shape[0]} ids")


def embed_ids(model, embed, ids):
    """``embed(ids)`` (ids of any shape), an id outside the vocabulary named by its batch row
    (torch says "index out of range in self")."""
    try:
        return embed(ids)
    except IndexError:
        V = embed.num_embeddings
        bad = ((ids < 0) | (ids >= V)).nonzero()
        if not len(bad):
            raise
        r = int(bad[0][0]) if bad.dim() > 1 and bad.shape[1] else 0
        raise IndexError(f"{type(model).__name__}: token id {int(ids[tuple(bad[0])])} at batch "
                         f"row {r} is outside the vocabulary [0, {V})") from None


def state_parts(model, state, *keys):
    """``state[key]`` for each of ``keys``, or one InputError saying what a state holds."""
    try:
        return tuple(state[k] for k in keys)
    except (KeyError, TypeError, IndexError) as e:
        what = f"keys {sorted(state)}" if isinstance(state, dict) else f"a {type(state).__name__}"
        key = e.args[0] if isinstance(e, KeyError) else keys[0]
        raise InputError(f"{type(model).__name__}.step: the state must be the dict its "
                         f"init_state / condition / encode gave, holding {key!r}; got "
                         f"{what}") from None
