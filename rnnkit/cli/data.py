"""``rnnkit data list`` and ``rnnkit data fetch NAME``: the named data sets and their cache."""
import argparse
import difflib

from rnnkit.data import DATASETS, fetch
from rnnkit.data.datasets import cache_dir, intact


def add_parser(sub):
    p = sub.add_parser("data", help="list and fetch named data sets")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    ls = dsub.add_parser("list", help="list the named data sets and whether they are cached")
    ls.set_defaults(func=run_list)
    f = dsub.add_parser("fetch", help="download a data set into the cache and verify it")
    f.add_argument("name", type=data_set_name, help="a name of `rnnkit data list`")
    f.add_argument("--force", action="store_true", help="download again even if cached")
    f.set_defaults(func=run_fetch)


def data_set_name(text):
    """A registered name; else argparse's error, naming the closest names (not all 40 of them,
    twice, as choices= did)."""
    if text in DATASETS:
        return text
    near = difflib.get_close_matches(text.lower(), DATASETS, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(near)}?" if near else ""
    raise argparse.ArgumentTypeError(f"no data set named {text!r}{hint} (rnnkit data list "
                                     f"names them)")


def run_list(args):
    print(f"cache: {cache_dir()}  (set RNNKIT_DATA to move it)")
    rows = []
    for name, ds in DATASETS.items():
        path = cache_dir() / ds.filename
        cached = "-" if not path.exists() else "cached" if intact(ds, path) else "damaged"
        src = f"{ds.source}:{ds.package}" + (f"=={ds.version}" if ds.version else "")
        rows.append((name, cached, src, ds.license, ds.description))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]   # the columns line up
    for name, cached, src, licence, about in rows:
        print(f"{name:<{widths[0]}}  {cached:<{widths[1]}}  {src:<{widths[2]}}  {about} "
              f"[{licence}]")


def run_fetch(args):
    print(fetch(args.name, force=args.force))
