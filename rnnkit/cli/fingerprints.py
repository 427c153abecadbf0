"""The fingerprints of a run's data files, which every checkpoint records and ``--resume``
compares (:mod:`rnnkit.cli.task_runs`): a file by its bytes, a folder by its files, a data set
read by its name by that name; the comparison of a checkpoint's with the data now, and of the
ranks' under torchrun."""
import dataclasses
import hashlib
from pathlib import Path

from rnnkit.data import DataError
from rnnkit.data.datasets import DATASETS
from rnnkit.data.text import expanded


def data_fingerprint(data_config):
    """{field: "sha256:<hex>", or "name:<data set>"} for the config's data fields (``data``,
    ``val_data``, ``test_data``, ...): what a resumed run must find unchanged. A file is hashed
    whole; a folder by every file below it (hidden ones aside: the readers pass them over), its
    relative path and bytes; the files a listing names (``data_config.listed_files(path)``, a
    recogniser's TSV) under ``field:files``. A registered data set is named (its bytes are
    pinned by its recorded checksum)."""
    prints = {}
    for f in dataclasses.fields(data_config):
        value = getattr(data_config, f.name)
        if not (f.name == "data" or f.name.endswith("_data")) or not isinstance(value, str) or not value:
            continue
        path = expanded(value)
        if named_set(data_config, f.name, value):   # the name wins over a file of that name,
            # as resolve() reads it (a field that reads files only reads the file)
            prints[f.name] = f"name:{value}"
        elif path.is_file():
            prints[f.name] = f"sha256:{_hash_files([(path, '')])}"
            listed = getattr(data_config, "listed_files", None)
            files = listed(path) if listed else []
            if files:
                prints[f"{f.name}:files"] = "sha256:" + _hash_files(
                    [(p, str(p)) for p in files])
        elif path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and not any(
                part.startswith(".") for part in p.relative_to(path).parts))
            prints[f.name] = "folder-sha256:" + _hash_files(
                [(p, p.relative_to(path).as_posix()) for p in files])
        else:
            prints[f.name] = "missing"
    return prints


def named_set(data_config, field, value):
    """Whether ``field`` of the config reads ``value`` as a data set by its name."""
    return value in DATASETS and field in by_name(data_config)


def by_name(data_config):
    """The fields of a data config that read a data set by its name: --data everywhere, and
    --val-data and --test-data where the task says so (BY_NAME: lm, tag)."""
    return getattr(type(data_config), "BY_NAME", ("data",))


def _hash_files(files):
    """SHA-256 of (name, size, bytes) of each file in turn; one file named '' is its bytes."""
    h = hashlib.sha256()
    for path, name in files:
        if name:
            h.update(f"{name}\0{path.stat().st_size}\0".encode("utf-8", "surrogateescape"))
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def check_same_data(run, before, now, allowed, hint="", paths=None):
    """Refuse a resume whose data files differ from those the run was trained on. What the
    checkpoint could not record (a folder, by an rnnkit before folders were hashed: "missing";
    a listing's files, by one before they were) is not compared. ``paths``: the data config's
    paths by field, to name a file that is gone. Returns the fingerprints that changed (where
    ``allowed``: none otherwise)."""
    unknown = {k for k in now if before.get(k, "missing") == "missing"
               and (k.endswith(":files") or k in before)}
    changed = [k for k in sorted(set(before) | set(now))
               if k not in unknown and not _same(before.get(k), now.get(k))]
    if not changed or allowed:
        return changed
    k = changed[0]
    flag = f"--{k.split(':')[0].replace('_', '-')}"
    what = f"files the {flag} listing names" if k.endswith(":files") else \
        f"{flag} folder" if str(now.get(k, before.get(k))).startswith("folder-") else f"{flag} file"
    more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
    path = (paths or {}).get(k.split(":")[0])
    if now.get(k) == "missing" and path:   # not changed: not found (a relative path, elsewhere)
        raise DataError(f"{run}: the run's {flag} file {path} is not there (a path relative to "
                        f"the folder the run started in?); give {flag} PATH to resume on it")
    raise DataError(f"{run}: the {what}{more} changed since this run started (its checkpoint "
                    f"records {before.get(k, 'none')[:19]}..., the data now gives "
                    f"{now.get(k, 'none')[:19]}...); --resume continues on the same data "
                    f"only: restore it, or start a new run with another --out{hint}")


def _same(before, now):
    """Whether two fingerprints are of the same data: equal; a set's name and its bytes by path;
    or a checkpoint's hash of the file beside the run that bears a set's name, which an rnnkit
    before the name won fingerprinted while it read the set."""
    if _bytes(before) == _bytes(now):
        return True
    if isinstance(now, str) and now.startswith("name:") and isinstance(before, str) \
            and before.startswith("sha256:"):
        beside = Path(now[5:])
        return beside.is_file() and before == f"sha256:{_hash_files([(beside, '')])}"
    # the other way: a flag that reads files only, whose file bears a set's name, was
    # fingerprinted by that name before; its bytes then were not recorded: not compared
    return isinstance(before, str) and before.startswith("name:") and isinstance(now, str) \
        and now.startswith("sha256:")


def _bytes(fingerprint):
    """A data set's name as the checksum of its bytes, which the same file given by its path
    gives."""
    if isinstance(fingerprint, str) and fingerprint.startswith("name:"):
        ds = DATASETS.get(fingerprint[5:])
        if ds is not None and ds.sha256:
            return f"sha256:{ds.sha256}"
    return fingerprint


def same_data(mine, ranks):
    """Refuse a data-parallel run whose ranks read different data files (fingerprints)."""
    for rank, other in enumerate(ranks):
        changed = [k for k in sorted(set(ranks[0]) | set(other)) if ranks[0].get(k) != other.get(k)]
        if changed:
            k = changed[0]
            ours, theirs = ranks[0].get(k, "none")[:19], other.get(k, "none")[:19]
            raise DataError(f"rank {rank} reads another --{k.replace('_', '-')} than rank 0 "
                            f"({theirs}... against {ours}...): "
                            f"every process of a data-parallel run must read the same data")
