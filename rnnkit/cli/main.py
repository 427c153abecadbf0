"""Entry point of the ``rnnkit`` console script: argparse subcommands, each in its own module.

    rnnkit data list | data fetch NAME
    rnnkit train lm ...            (later: train classify | tag | forecast | seq2seq | cond)
    rnnkit sample RUN ...          (a conditional generator: sample RUN --cond LABEL -n N)
    rnnkit translate RUN TEXT ...
    rnnkit predict RUN TEXT ... | tag RUN SENTENCE ... | forecast RUN --steps N
    rnnkit eval RUN FILE [--json]  (score a trained run on a data file of its task)
    rnnkit demo --minutes N
    rnnkit gradflow --task adding --lags 10 50 100 200 --preset quick
    rnnkit kernels                 (build the fused CPU kernels now; show which path runs)
"""
import argparse
import sys

from rnnkit.cli import data, demo, gradflow, sample, train, translate
from rnnkit.cli import evaluate, forecast, kernels, predict, tag

COMMANDS = {"data": data, "train": train, "sample": sample, "demo": demo, "translate": translate,
            "gradflow": gradflow, "predict": predict, "tag": tag, "forecast": forecast,
            "kernels": kernels, "eval": evaluate}


def build_parser():
    parser = argparse.ArgumentParser(prog="rnnkit", description="Recurrent networks for PyTorch: "
                                     "train and sample language models, and more.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        module.add_parser(sub)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    from rnnkit.data import DataError
    from rnnkit.train import CheckpointError
    try:
        return args.func(args) or 0
    except (DataError, CheckpointError) as e:
        print(f"rnnkit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nrnnkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
