"""``rnnkit data list`` and ``rnnkit data fetch NAME``: the named data sets and their cache."""
from rnnkit.data import DATASETS, fetch
from rnnkit.data.datasets import cache_dir, intact


def add_parser(sub):
    p = sub.add_parser("data", help="list and fetch named data sets")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    ls = dsub.add_parser("list", help="list the named data sets and whether they are cached")
    ls.set_defaults(func=run_list)
    f = dsub.add_parser("fetch", help="download a data set into the cache and verify it")
    f.add_argument("name", choices=sorted(DATASETS))
    f.add_argument("--force", action="store_true", help="download again even if cached")
    f.set_defaults(func=run_fetch)


def run_list(args):
    print(f"cache: {cache_dir()}  (set RNNKIT_DATA to move it)")
    for name, ds in DATASETS.items():
        path = cache_dir() / ds.filename
        cached = "-" if not path.exists() else "cached" if intact(ds, path) else "damaged"
        src = f"{ds.source}:{ds.package}" + (f"=={ds.version}" if ds.version else "")
        print(f"{name:<14} {cached:<7} {src:<28} {ds.license:<10} {ds.description}")


def run_fetch(args):
    print(fetch(args.name, force=args.force))
