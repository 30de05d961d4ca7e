"""``convscope evaluate``: any model on MNIST, an image folder or a CSV of file,label; a text report or JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import ConvscopeError
from .options import add_mnist_dir_option, add_model_options, settings_from_args

CONFUSION_UP_TO = 12  # classes; above that the text report lists the most frequent confusions instead
PER_CLASS_ROWS = 30


def add_evaluate_parser(commands) -> None:
    p = commands.add_parser("evaluate", help="score a model on MNIST, an image folder or a CSV: accuracy, top-5, "
                                             "loss, per-class precision/recall/F1, confusion, calibration, mistakes")
    add_model_options(p)
    data = p.add_mutually_exclusive_group()
    data.add_argument("--split", choices=("test", "train"),
                      help="an MNIST split (default for an MNIST model without --folder or --csv: test)")
    data.add_argument("--folder", type=Path, metavar="DIR",
                      help="a folder with one sub-folder of images per class, named after the model's classes "
                           "(ImageNet models: names or WordNet ids)")
    data.add_argument("--csv", type=Path, metavar="FILE",
                      help="a CSV of file,label rows (files relative to the CSV's folder)")
    add_mnist_dir_option(p)
    p.add_argument("--root", type=Path, metavar="DIR",
                   help="the folder --csv's file names are relative to (default: the CSV's folder)")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    p.add_argument("--misclassified", type=int, default=20, metavar="N",
                   help="how many mistakes to list, most confident first")
    p.add_argument("--out", type=Path, metavar="FILE", help="also write the whole report as JSON to this file")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")


def cmd_evaluate(args, load) -> None:
    from ..data import load_mnist
    from ..evaluation import MnistSet, evaluate_model, labelled_set_for
    if args.precision != "fp32":
        raise ConvscopeError("convscope evaluate runs in fp32 (--precision is for predict and explain)")
    if args.batch_size < 1 or args.misclassified < 0:
        raise ConvscopeError("--batch-size must be >= 1 and --misclassified >= 0")
    if args.root is not None and args.csv is None:
        raise ConvscopeError("--root goes with --csv")
    checkpoint = load(args)
    adapter = checkpoint.adapter
    if args.folder is None and args.csv is None:
        if checkpoint.spec.dataset != "mnist":
            raise ConvscopeError(f"{adapter.name} does not read MNIST digits: give --folder DIR or --csv FILE of "
                                 "labelled images")
        split = args.split or "test"
        data = MnistSet(load_mnist(split, settings_from_args(args)), split)
    else:
        data = labelled_set_for(adapter, args.folder, args.csv, args.root)
    show_progress = not args.json and sys.stderr.isatty()
    report = evaluate_model(adapter, data, args.batch_size, misclassified_limit=args.misclassified,
                            progress=_progress if show_progress else None)
    if show_progress:
        print(file=sys.stderr)
    result = report.as_dict()
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1))
    if args.json:
        print(json.dumps(result))
        return
    print("\n".join(text_report(result)))


def _progress(done: int, total: int) -> None:
    print(f"\r{done:,}/{total:,} images", end="", file=sys.stderr, flush=True)


def text_report(report: dict) -> list[str]:
    m, names = report["metrics"], report["class_names"]
    r2 = "undefined (one class)" if m["r2"] is None else f"{m['r2']:.4f}"
    data = report["dataset"]
    lines = [f"{report['model']} on {data['source']}: {m['count']:,} images"
             + (f" ({len(report['skipped'])} skipped: see below)" if report["skipped"] else ""),
             f"  top-1 accuracy {m['accuracy']:.4f}   top-5 {m['top5_accuracy']:.4f}   cross-entropy {m['loss']:.4f}",
             f"  macro F1 {m['macro_f1']:.4f}   calibration error (ECE, 15 bins) {m['ece']:.4f}",
             f"  MSE {m['mse']:.5f} and R² {r2} of the probabilities against one-hot labels",
             "  (MSE 0 and R² 1 are perfect; R² 0 is no better than always answering each class's frequency)", ""]
    rows = [row for row in zip(m["classes"], m["precision"], m["recall"], m["f1"], m["support"], strict=True)
            if row[4]]
    if len(rows) > PER_CLASS_ROWS:  # the biggest classes
        rows.sort(key=lambda row: (-row[4], row[0]))
    shown = rows[:PER_CLASS_ROWS]
    width = max([5] + [len(names[c]) for c in [row[0] for row in shown] + m["classes"][:CONFUSION_UP_TO]])
    lines.append(f"{'class':<{width}}  precision  recall      F1  images")
    lines += [f"{names[c]:<{width}}  {p:9.4f}  {r:6.4f}  {f:6.4f}  {n:6,}" for c, p, r, f, n in shown]
    if len(rows) > len(shown):
        lines.append(f"... and {len(rows) - len(shown)} more classes (--json for all)")
    lines.append("")
    classes = m["classes"]
    if len(classes) <= CONFUSION_UP_TO:
        cell = max(5, *(len(str(v)) for row in m["confusion"] for v in row))
        lines.append("confusion (rows: true class, columns: predicted)")
        lines.append(" " * (width + 2) + " ".join(f"{names[c][:cell]:>{cell}}" for c in classes))
        lines += [f"{names[c]:<{width}}  " + " ".join(f"{v:>{cell}}" for v in row)
                  for c, row in zip(classes, m["confusion"], strict=True)]
    else:
        pairs = sorted(((v, i, j) for i, row in enumerate(m["confusion"]) for j, v in enumerate(row) if i != j and v),
                       reverse=True)[:10]
        lines.append("most frequent confusions (true -> predicted)")
        lines += [f"  {names[classes[i]]} -> {names[classes[j]]}: {v}" for v, i, j in pairs]
    if report["misclassified"]:
        lines += ["", "most confident mistakes"]
        lines += [f"  {e['source']}: {e['label']} taken for {e['predicted']} ({e['confidence']:.1%})"
                  for e in report["misclassified"][:10]]
    if report["skipped"]:
        lines += ["", f"skipped {len(report['skipped'])} file(s):"]
        lines += [f"  {s['file']}: {s['reason']}" for s in report["skipped"][:10]]
    return lines
