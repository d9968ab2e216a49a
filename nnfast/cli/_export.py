"""``nnfast export MODEL --onnx PATH [--torch PATH]``: the model as an ONNX graph or a PyTorch module.

The exported net takes raw feature values, in the model's feature order,
and returns the target's units: the model's standardization is folded
into the first layer (and, for regression, the target's into the last;
see ``Model.folded_net``), so no preprocessing is needed outside.
Classifiers export their logits (``--output proba`` or ``classes`` for
ONNX's probabilities or class indices, which index ``nnfast info``'s classes).
A ``--loss poisson`` model exports the log of the predicted mean.
"""
import os

from nnfast import io
from nnfast.cli._data import DataError
from nnfast.cli._model import load_model


def add_arguments(parser):
    """Add ``export``'s arguments to ``parser``."""
    parser.add_argument("model", metavar="MODEL", help="a model file written by `nnfast train`")
    parser.add_argument("--onnx", metavar="PATH", help="write an ONNX model (needs onnx)")
    parser.add_argument("--torch", metavar="PATH",
                        help="write a torch.nn.Sequential with torch.save (needs torch; read it with "
                             "torch.load(PATH, weights_only=False))")
    parser.add_argument("--output", choices=("raw", "proba", "classes"), default="raw",
                        help="what the ONNX graph outputs for a classifier (default: raw, the logits)")


def _import(module, package):
    """Import the optional ``module``, or a DataError saying what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataError(f"--{package}", f"needs the {package} package, which is not installed: "
                                        f"pip install {package}") from None


def run(args):
    """Export as ``args`` says; return the exit status."""
    if not args.onnx and not args.torch:
        args.parser.error("give --onnx PATH, --torch PATH or both")
    if args.output != "raw" and not args.onnx:
        args.parser.error("--output applies to --onnx")
    onnx_module = _import("nnfast.onnx", "onnx") if args.onnx else None
    torch_module = _import("nnfast.torch", "torch") if args.torch else None
    for path in (args.onnx, args.torch):
        if path is not None and os.path.exists(path) and os.path.samefile(path, args.model):
            raise DataError(path, "it is the model being exported; choose another output path")
    model = load_model(args.model)
    if args.output != "raw" and not model.is_classifier:
        raise DataError(args.model, f"--output {args.output} needs a classifier; this model predicts numbers")
    net = model.folded_net()
    if onnx_module is not None:
        onnx_module.save_onnx(net, args.onnx, output=args.output)
        print(f"ONNX model written to {args.onnx} (input 'input': {len(model.features)} raw features "
              f"{', '.join(model.features)}, {net.dtype})")
    if torch_module is not None:
        import torch

        module = torch_module.to_torch(net)
        io.write_atomically(args.torch, lambda file: torch.save(module, file))
        print(f"PyTorch module written to {args.torch}")
    return 0
