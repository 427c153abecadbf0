"""``rnnkit kernels``: build the fused CPU kernels now (they are otherwise built at first use) and
say which path the layers will run; exit status 1 where they cannot be built."""
import json


def add_parser(sub):
    p = sub.add_parser("kernels", help="build the fused CPU kernels and show their status",
                       description=__doc__)
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p.set_defaults(func=run)


def run(args):
    from rnnkit import kernels
    info = kernels.info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:13s} {value}")
    return 0 if info["step_kernels"] else 1
