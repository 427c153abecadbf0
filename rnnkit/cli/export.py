"""``rnnkit export RUN --format onnx|pt2 --out FILE``: a trained run as an inference program.

onnx: the recurrent layers as ONNX's LSTM/GRU/RNN operators, for onnxruntime and other ONNX
runtimes (needs ``pip install 'rnnkit[export]'``); a layer with an option ONNX has no operator
for (layer norm, zoneout, another cell) is refused, naming it. pt2: ``torch.export``'s program
with rnnkit's layers as custom operators: every option, loaded with ``rnnkit.export.load(FILE)``
(or torch.export.load after ``import rnnkit``). Batch and sequence length are dynamic in both.

What a run becomes: lm, forecast, classify, tag and recognize runs one program (the recogniser's
gives per-frame CTC log-probabilities; decoding stays on the host, rnnkit.decode.ctc); seq2seq,
image-to-text and cond runs two, FILE's stem + ``-encoder`` (the input to the decoder's initial
state) and ``-decoder`` (one step, every recurrent state an input and an output).
"""
import sys

from rnnkit.cli.options import given_path, output_file


def add_parser(sub):
    p = sub.add_parser("export", help="write a trained run as an ONNX or torch.export program",
                       description=__doc__)
    p.add_argument("run", type=given_path, help="run folder (uses best.pt) or a checkpoint file")
    p.add_argument("--format", required=True, choices=("onnx", "pt2"),
                   help="onnx (ONNX operators) or pt2 (torch.export, rnnkit's operators)")
    p.add_argument("--out", type=output_file, required=True, help="file to write")
    p.set_defaults(func=run)


def run(args):
    from rnnkit.export import export_run
    from rnnkit.outputs import descriptor
    for file, about in export_run(args.run, args.format, args.out):
        # a program written to standard output (--out /dev/stdout > m.onnx): the line after
        # it would have been part of the file
        said = sys.stderr if descriptor(file) == 1 else sys.stdout
        print(f"{file}: {about}", file=said)
    return 0
