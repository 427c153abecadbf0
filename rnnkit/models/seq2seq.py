"""Encoder-decoder (N→M) on rnnkit's recurrent layers: Cho et al. 2014 / Sutskever et al. 2014,
with the attention of Bahdanau et al. 2015 or Luong et al. 2015 and Luong's input feeding.

    encoder:  m_{1..S}, h_S = RNN_enc(E_src[x_{1..S}])      (B, S, M), M = D·H_enc
    bridge:   s_0 = tanh(W_b [h_S^fwd; h_1^bwd] + b_b)      (L_dec, B, H) from the top layer
    decoder:  s_t = RNN_dec([E_tgt[y_{t-1}]; o_{t-1}], s_{t-1})   (input feeding: o_{t-1})
              c_t = attention(s_t, m) or, with no attention, the fixed summary [h_S^fwd; h_1^bwd]
              o_t = tanh(W_c [s_t; c_t])                      (B, H)
              p(y_t | y_<t, x) = softmax(W_o o_t)             (B, V)

Shapes: B batch, S source length, T target length, E embedding, H decoder hidden, H_enc encoder
hidden per direction, D encoder directions, L layers, V target vocabulary. Token id 0 is padding.
The decoder speaks :mod:`rnnkit.decode`'s interface: ``state = model.encode(src, lengths)``, then
``step(y_t, state) -> (logits, state)``; the state is a dict carrying the attention memory.
"""
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from rnnkit.config import (MAX_LAYERS, MAX_STEPS, MAX_VOCAB, MAX_WIDTH, ConfigError, check,
                           check_size, recurrent_params)
from rnnkit.layers import fast_step
from rnnkit.layers.packing import with_lengths
from rnnkit.layers.recurrent import task_states
from rnnkit.models.step_inputs import check_ids, embed_ids, state_parts
from rnnkit.layers.attention import ATTENTION
from rnnkit.models.language_model import CELLS

PAD = 0


@dataclass
class Seq2SeqConfig:
    """The model's shape; stored in checkpoints so ``translate`` rebuilds the model alone."""
    src_vocab: int = field(default=0, metadata={"range": (0, MAX_VOCAB)})   # filled in from the data
    tgt_vocab: int = field(default=0, metadata={"range": (0, MAX_VOCAB)})
    cell: str = field(default="lstm", metadata={
        "help": "recurrent cell of encoder and decoder: lstm, gru, rnn or a registered one",
        "choices": CELLS})
    embed: int = field(default=64, metadata={"help": "token embedding size, source and target",
                                              "range": (1, MAX_WIDTH)})
    enc_hidden: int = field(default=128, metadata={"help": "encoder hidden size per direction",
                                                    "range": (1, MAX_WIDTH)})
    enc_layers: int = field(default=1, metadata={"help": "stacked encoder layers",
                                                  "range": (1, MAX_LAYERS)})
    bidirectional: bool = field(default=True, metadata={"help": "bidirectional encoder"})
    hidden: int = field(default=256, metadata={"help": "decoder hidden size",
                                                "range": (1, MAX_WIDTH)})
    dec_layers: int = field(default=1, metadata={"help": "stacked decoder layers",
                                                  "range": (1, MAX_LAYERS)})
    attention: str = field(default="general", metadata={
        "help": "none, additive (Bahdanau), dot or general (Luong)",
        "choices": ("none", *ATTENTION)})
    input_feed: bool = field(default=True, metadata={
        "help": "feed the previous attentional output back into the decoder (Luong)"})
    dropout: float = field(default=0.0, metadata={
        "help": "dropout on the embeddings, between layers and before the softmax (0: off)",
        "range": "[0, 1)"})
    max_len: int = field(default=200, metadata={
        "help": "longest source and output, in tokens; longer pairs are skipped",
        "range": (1, MAX_STEPS)})

    def __post_init__(self):
        check(self)
        E, H, M = self.embed, self.hidden, (1 + self.bidirectional) * self.enc_hidden
        if self.attention == "dot" and H != M:   # h_t · m_s: one size
            raise ConfigError(f"attention dot scores the decoder state against the encoder's "
                              f"outputs directly: hidden must equal enc_hidden"
                              f"{' x 2 (a bidirectional encoder)' if self.bidirectional else ''}"
                              f" = {M}, got hidden {H} (or use --attention general)")
        L, V = self.dec_layers, self.tgt_vocab
        check_size(self, (self.src_vocab + V) * E + 2 * M * L * H + M * M + (H + M) * H
                   + (H + 1) * V + recurrent_params(self.cell, self.enc_layers, E,
                                                     self.enc_hidden, 1 + self.bidirectional)
                   + recurrent_params(self.cell, L, E + H * self.input_feed, H),
                   ("src_vocab", "tgt_vocab", "embed", "enc_hidden", "hidden", "enc_layers",
                    "dec_layers"))


class Seq2Seq(nn.Module):
    def __init__(self, config):
        super().__init__()
        c = self.config = config
        if c.src_vocab < 1 or c.tgt_vocab < 1:
            raise ValueError(f"vocabulary sizes must be >= 1, got src {c.src_vocab}, "
                             f"tgt {c.tgt_vocab}")
        D = 2 if c.bidirectional else 1
        M = D * c.enc_hidden                                       # memory size
        self.src_embed = nn.Embedding(c.src_vocab, c.embed, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(c.tgt_vocab, c.embed, padding_idx=PAD)
        self.encoder = CELLS[c.cell](c.embed, c.enc_hidden, c.enc_layers, batch_first=True,
                                     dropout=c.dropout if c.enc_layers > 1 else 0.0,
                                     bidirectional=c.bidirectional)
        task_states(self.encoder, c.cell, "seq2seq encoder", most=2)
        self.bridge = nn.Linear(M, c.dec_layers * c.hidden)
        two = self.encoder.cell.N_STATES == 2                      # (h, c): LSTM, peephole LSTM
        self.bridge_c = nn.Linear(M, c.dec_layers * c.hidden) if two else None
        dec_in = c.embed + (c.hidden if c.input_feed else 0)
        self.decoder = CELLS[c.cell](dec_in, c.hidden, c.dec_layers, batch_first=True,
                                     dropout=c.dropout if c.dec_layers > 1 else 0.0)
        task_states(self.decoder, c.cell, "seq2seq decoder", most=2)
        self.attn = ATTENTION[c.attention](c.hidden, M) if c.attention != "none" else None
        self.combine = nn.Linear(c.hidden + M, c.hidden)           # W_c
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden, c.tgt_vocab)               # W_o

    # ------------------------------------------------------------ encoder and bridge
    def encode(self, src, lengths):
        """src (B, S) ids padded with 0, lengths (B,) -> the decoder's initial state (a dict)."""
        if src.dim() != 2 or src.shape[0] != len(lengths):
            raise ValueError(f"expected src (B, S) and lengths (B,), got {tuple(src.shape)} and "
                             f"{tuple(torch.as_tensor(lengths).shape)}")
        memory, mask, summary, feed, s0 = self.encode_tensors(src, torch.as_tensor(lengths))
        state = {"rnn": s0, "feed": feed, "memory": memory, "mask": mask, "summary": summary}
        if self.attn is not None:
            state["keys"] = self.attn.keys(memory)
        return state

    def encode_tensors(self, src, lengths):
        """The encoder and bridge without argument checks (what an exported encoder computes):
        memory (B, S, M), mask (B, S), summary (B, M), feed (B, H) zeros and the decoder's
        initial state (L, B, H) (a pair (h, c) for a two-state cell)."""
        c = self.config
        memory, h_n = with_lengths(self.encoder, self.drop(self.src_embed(src)), lengths)  # (B, S, M)
        h_n, c_n = h_n if isinstance(h_n, tuple) else (h_n, None)
        summary = self._top(h_n)                                                     # (B, M)
        B, L, H = src.shape[0], c.dec_layers, c.hidden
        s0 = torch.tanh(self.bridge(summary)).view(B, L, H).transpose(0, 1).contiguous()  # (L, B, H)
        if c_n is not None:
            c0 = self.bridge_c(self._top(c_n)).view(B, L, H).transpose(0, 1).contiguous()
            s0 = (s0, c0)
        positions = torch.arange(src.shape[1], device=src.device)                       # (S,)
        mask = positions[None] < lengths.to(src.device)[:, None]                       # (B, S)
        return memory, mask, summary, summary.new_zeros(B, H), s0

    def _top(self, h_n):
        """The top encoder layer's final state(s), directions side by side: (L·D, B, H) -> (B, M)."""
        D = 2 if self.config.bidirectional else 1
        return torch.cat(list(h_n[-D:]), dim=-1)

    def init_state(self, batch):
        raise TypeError("a Seq2Seq decoder starts from a source: use state = model.encode(src, "
                        "lengths) and pass it as state=")

    # ------------------------------------------------------------ decoder
    def step(self, y_prev, state):
        """y_prev (B,) previous target ids -> logits (B, V) and the next state (with "attn" (B, S)
        holding this step's attention weights, when the model attends). In a state from
        :meth:`expand_beams` the B rows are G per source, attended to together."""
        feed, rnn, memory, mask, summary = state_parts(self, state, "feed", "rnn", "memory",
                                                       "mask", "summary")
        check_ids(self, y_prev, feed.shape[0])
        logits, o, rnn_state, a = self.decode_step(
            y_prev, feed, rnn, state.get("keys"), memory, mask, summary, state.get("beams", 1))
        new = dict(state, rnn=rnn_state, feed=o)
        if a is not None:
            new["attn"] = a
        return logits, new

    def decode_step(self, y_prev, feed, rnn_state, keys, memory, mask, summary, G=1,
                    recur=fast_step.step):
        """One decoder step on tensors: -> logits (B, V), the attentional output o (B, H) (the
        next feed), the decoder's next state, the attention weights (B, S) (None without
        attention). The B rows are G per source (memory, keys, mask, summary: one row per
        source); ``recur(layer, x, state) -> (top output, state)`` runs the decoder stack."""
        x = self.drop(embed_ids(self, self.tgt_embed, y_prev))                         # (B, E)
        if self.config.input_feed:
            x = torch.cat([x, feed], dim=-1)                                           # (B, E+H)
        s, rnn_state = recur(self.decoder, x, rnn_state)                               # (B, H)
        a = None
        if self.attn is not None:
            q = s.view(-1, G, s.shape[-1]) if G > 1 else s                             # (N, G, H)
            ctx, a = self.attn(q, keys, memory, mask)                                  # (N, G, M)
            a = a.flatten(0, 1) if G > 1 else a                                        # (B, S)
            ctx = ctx.flatten(0, 1) if G > 1 else ctx                                  # (B, M)
        else:
            ctx = summary.repeat_interleave(G, 0) if G > 1 else summary               # (B, M)
        o = torch.tanh(self.combine(torch.cat([s, ctx], dim=-1)))                     # (B, H)
        return self.head(self.drop(o)), o, rnn_state, a                                # (B, V)

    PER_ROW = ("rnn", "feed")           # the decoder's part of the state; the rest is per source

    def expand_beams(self, state, G):
        """The state of N sources with G decoder rows each (rows n·G .. n·G+G-1 continue source
        n; the encoder's part stays one row per source): for a batched beam search."""
        out = {k: v for k, v in state.items() if k != "attn"}
        rows = lambda v: v.repeat_interleave(G, 0)
        out["rnn"] = tuple(r.repeat_interleave(G, 1) for r in state["rnn"]) \
            if isinstance(state["rnn"], tuple) else state["rnn"].repeat_interleave(G, 1)
        out["feed"] = rows(state["feed"])
        out["beams"] = G * state.get("beams", 1)
        return out

    def reorder_state(self, state, index):
        """Keep / repeat batch rows ``index`` (K,) of every tensor in the state (for beam search).
        A tensor of one row, or of one row repeated (stride 0: beam search over one source's
        memory), is expanded, not copied. In a state from :meth:`expand_beams` the decoder rows
        are taken as they are and the sources of the kept groups (``index[::G] // G``; an index
        keeps whole groups, in order) only where some are dropped."""
        G = state.get("beams", 1)
        if G > 1:
            return self._reorder_groups(state, index, G)

        def rows(v):
            if v.shape[0] == 1 or v.stride(0) == 0:
                return v[:1].expand(len(index), *v.shape[1:])
            return v.index_select(0, index)
        out = {}
        for k, v in state.items():
            if k == "rnn":
                out[k] = tuple(s.index_select(1, index) for s in v) if isinstance(v, tuple) \
                    else v.index_select(1, index)                                      # (L, K, H)
            elif k == "beams":            # a count, not rows (expand_beams at beam size 1)
                out[k] = v
            else:
                out[k] = rows(v)
        return out

    def _reorder_groups(self, state, index, G):
        if len(index) % G:
            raise ValueError(f"a state of {G} rows per source is reordered by whole groups; "
                             f"got {len(index)} rows")
        sources = index[::G] // G                                                     # (N',)
        N = state["memory"].shape[0]
        same = len(sources) == N and bool((sources == torch.arange(N, device=index.device)).all())
        out = {}
        for k, v in state.items():
            if k == "rnn":
                out[k] = tuple(s.index_select(1, index) for s in v) if isinstance(v, tuple) \
                    else v.index_select(1, index)                                      # (L, B, H)
            elif k == "beams" or (same and k not in self.PER_ROW):
                out[k] = v
            elif k in self.PER_ROW or k == "attn":
                out[k] = v.index_select(0, index)
            else:
                out[k] = v.index_select(0, sources)                                    # per source
        return out

    def forward(self, src, lengths, tgt_in, teacher_forcing=1.0):
        """Logits (B, T, V) for target inputs tgt_in (B, T) (BOS first). With teacher_forcing < 1
        each step feeds, with probability 1 - teacher_forcing, the model's own previous argmax
        instead of the reference token (one coin per step for the whole batch)."""
        if tgt_in.dim() != 2 or tgt_in.shape[0] != src.shape[0]:
            raise ValueError(f"expected tgt_in (B, T) with B = {src.shape[0]} as in src, got "
                             f"{tuple(tgt_in.shape)}")
        state = self.encode(src, lengths)
        if tgt_in.shape[1] == 0:                          # nothing to predict: no step
            return self.head.weight.new_zeros(src.shape[0], 0, self.config.tgt_vocab)
        if not self.config.input_feed and teacher_forcing >= 1:
            return self._forward_parallel(tgt_in, state)
        logits, y = [], tgt_in[:, 0]
        for t in range(tgt_in.shape[1]):
            out, state = self.step(y, state)                                           # (B, V)
            logits.append(out)
            if t + 1 < tgt_in.shape[1]:
                own = teacher_forcing < 1 and float(torch.rand(())) >= teacher_forcing
                y = out.argmax(-1) if own else tgt_in[:, t + 1]
        return torch.stack(logits, dim=1)                                              # (B, T, V)

    def _forward_parallel(self, tgt_in, state):
        """Without input feeding and with full teacher forcing no step waits for the previous
        step's output: one decoder call over all T steps, attention for all steps at once."""
        x = self.drop(self.tgt_embed(tgt_in))                                          # (B, T, E)
        s, _ = self.decoder(x, state["rnn"])                                           # (B, T, H)
        if self.attn is not None:
            ctx, _ = self.attn(s, state["keys"], state["memory"], state["mask"])       # (B, T, M)
        else:
            ctx = state["summary"][:, None].expand(-1, s.shape[1], -1)                 # (B, T, M)
        o = torch.tanh(self.combine(torch.cat([s, ctx], dim=-1)))                     # (B, T, H)
        return self.head(self.drop(o))                                                 # (B, T, V)

    def loss(self, src, lengths, tgt, label_smoothing=0.0, teacher_forcing=1.0):
        """Mean cross-entropy per target token (padding excluded) and the token count.
        tgt (B, T+1) is BOS y_1 ... y_n EOS, padded with 0."""
        if tgt.dim() != 2 or tgt.shape[1] < 2:
            raise ValueError(f"expected tgt (B, T+1): BOS, the target's ids and EOS, at least 2 "
                             f"columns, got {tuple(tgt.shape)}")
        logits = self(src, lengths, tgt[:, :-1], teacher_forcing)                      # (B, T, V)
        gold = tgt[:, 1:]                                                              # (B, T)
        loss = F.cross_entropy(logits.flatten(0, 1), gold.flatten(), ignore_index=PAD,
                               label_smoothing=label_smoothing)
        return loss, int((gold != PAD).sum())

    @torch.no_grad()
    def attention_map(self, src, lengths, tgt_in):
        """Attention weights (T, S) of one sentence while reading tgt_in (1, T), BOS first."""
        if self.attn is None:
            raise ValueError("this model has no attention (attention='none'): nothing to plot")
        state, rows = self.encode(src, lengths), []
        for t in range(tgt_in.shape[1]):
            _, state = self.step(tgt_in[:, t], state)
            rows.append(state["attn"][0])
        return torch.stack(rows)                                                       # (T, S)
