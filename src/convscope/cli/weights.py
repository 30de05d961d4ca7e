"""``convscope weights list | fetch NAME | verify [NAME] | path NAME``: the pretrained weights files."""

from __future__ import annotations

import json
import sys

from ..errors import ConvscopeError


def add_weights_parser(commands) -> None:
    p = commands.add_parser("weights", help="pretrained weights: list, fetch, verify, path")
    sub = p.add_subparsers(dest="weights_command", required=True, metavar="SUBCOMMAND")
    listing = sub.add_parser("list", help="every weights file with its state, size and published accuracy")
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    name_help = "a model (its default weights) or a key such as resnet50.IMAGENET1K_V1"
    fetch = sub.add_parser("fetch", help="download a model's weights (or NAME.WEIGHTS), checked by SHA-256")
    fetch.add_argument("name", help=name_help)
    verify = sub.add_parser("verify", help="check the SHA-256 of the weights files that are here")
    verify.add_argument("name", nargs="?", help="only this model or key (default: every file that is here)")
    path = sub.add_parser("path", help="print where a weights file is")
    path.add_argument("name", help=name_help)


def terminal_download_bar(description: str):
    """Plain tqdm on stderr, one bar per file, drawn only once bytes arrive (a file already here shows nothing):
    ``with terminal_download_bar("name") as progress: fetch(..., progress=progress)``."""
    from tqdm import tqdm

    from ..progress import DownloadBar
    return DownloadBar(description, file=sys.stderr, tqdm_class=tqdm)


def cmd_weights(args) -> None:
    from ..models.imagenet import WEIGHTS
    from ..models.imagenet.store import fetch_weights, find_weights, get_record, status, verify_file
    from ..settings import Settings
    settings = Settings.from_env()
    command = args.weights_command
    if command == "list":
        rows = [status(record, settings) for record in WEIGHTS]
        if args.json:
            print(json.dumps(rows, indent=2))
            return
        for row in rows:
            accuracy = f"top-1 {row['acc1']:.1f}%" if row["acc1"] else ""
            print(f"{row['key']:<32} {row['state']:<8} {row['size'] / 2**20:7.1f} MB  {accuracy}")
        return
    if command == "verify":
        records = [get_record(args.name)] if args.name else list(WEIGHTS)
        checked = 0
        for record in records:
            path = find_weights(record, settings)
            if path is None:
                if args.name:
                    raise ConvscopeError(f"{record.key} is not here: `convscope weights fetch {record.key}`")
                continue
            verify_file(record, path)  # raises with what is wrong
            print(f"{record.key}: OK ({path})")
            checked += 1
        if not checked:
            print("no weights files here yet: `convscope weights fetch NAME`")
        return
    record = get_record(args.name)
    if command == "path":
        path = find_weights(record, settings)
        if path is None:
            raise ConvscopeError(f"{record.key} is not here: `convscope weights fetch {record.key}`")
        print(path)
        return
    with terminal_download_bar(record.file_name) as progress:
        path = fetch_weights(record, settings, progress=progress)
    print(path)
