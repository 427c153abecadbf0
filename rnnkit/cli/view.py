"""``rnnkit view RUN [--port 8000]``: a local web page that shows inside a trained model (units
over the text it reads, predictions, live sampling, attention, forecasts) and the run's training
curves, following a run that is still training. See :mod:`rnnkit.view.server`."""
import errno
import sys

from rnnkit.cli.options import given_path, ranged
from rnnkit.config import ConfigError


def add_parser(sub):
    p = sub.add_parser("view", help="look inside a trained model in the browser (a local web page)")
    p.add_argument("run", type=given_path, help="a run folder, a checkpoint file, or a folder of "
                                                "runs (e.g. runs/: a picker lists them)")
    p.add_argument("--port", type=ranged(int, (0, 65535)), default=8000,
                   help="port to serve on (default 8000; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to serve on (default 127.0.0.1: this machine only)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a --host other machines can reach: anyone who connects can read "
                        "the run's files and use its model")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.set_defaults(func=run)


def run(args):
    from rnnkit.view.server import ViewServer
    if not args.run.exists():
        raise ConfigError(f"{args.run}: no such run folder or checkpoint file")
    if not args.run.is_dir():   # a file: a checkpoint, or refused here (it was served as a run)
        from rnnkit.train.checkpoint import load_checkpoint
        load_checkpoint(args.run)
    try:
        server = ViewServer(args.run, args.host, args.port, args.allow_remote)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {args.port} on {args.host} is in use; choose another with "
                              f"--port (0: any free port)") from None
        if e.errno in (errno.EADDRNOTAVAIL, errno.EACCES):   # not this machine's; a low port
            raise ConfigError(f"cannot serve on {args.host} port {args.port}: "
                              f"{e.strerror or e}") from None
        raise
    found = server.runs.find()
    what = args.run if [r.id for r in found] == ["."] else f"{len(found)} run(s) under {args.run}"
    print(f"rnnkit view: {what} at {server.url}  (Ctrl-C to stop)", flush=True)
    if not found:
        print(f"rnnkit: note: no run under {args.run} yet (a run folder holds best.pt or "
              f"metrics.jsonl); the page waits for one", file=sys.stderr)
    if args.open:
        import webbrowser
        webbrowser.open(server.url)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt as e:
        if type(e) is not KeyboardInterrupt:   # SIGTERM: said and exit 143 as for any command
            raise
        print("\nrnnkit view: stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0
