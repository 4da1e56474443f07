"""Regenerate cosma_fast/zoo_data/*.json.gz: the COSMA model set (DESIGN.md section 4).

Usage::

    python bench/make_zoo.py                # every model
    python bench/make_zoo.py resnet50 darts  # some models
    python bench/make_zoo.py --check         # rebuild and compare with the shipped files

Needs torch 2.13 and torchvision 0.28 (``pip install torchvision==0.28.0 --no-deps``).
Every model is built on the ``meta`` device (no weight memory, no downloads),
traced by :func:`cosma_fast.from_torch` at batch 1 with 8-bit data
(``dtype_bytes=1``), images 1x3x224x224, video 1x3x16x224x224. The NAS networks
are the DARTS ImageNet network (Liu, Simonyan, Yang, "DARTS", ICLR 2019; C=48,
14 cells) instantiated with the published cell genotypes of NASNet-A (Zoph et
al. 2018), AmoebaNet (Real et al. 2019), PNASNet-5 (Liu et al. 2018) and
DARTS_V2, as listed in the DARTS codebase ``genotypes.py``.

The files are deterministic: sorted JSON without spaces, gzip with mtime 0.
The budgets in each file's meta come from :func:`cosma_fast.budgets` when that
is available; they are computed once and carried over unchanged when the graph
itself did not change (``--check`` compares the graph bytes, budgets included
from the shipped file), so a slower or faster machine never changes the files.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
import types
from collections import namedtuple
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cosma_fast as cf  # noqa: E402
from cosma_fast import zoo  # noqa: E402

ZOO_DIR = ROOT / "cosma_fast" / "zoo_data"


def _import_torchvision():
    # torchvision 0.28 registers C++ operators at import that the CPU wheel of torch lacks
    for m in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
        sys.modules.setdefault(m, types.ModuleType(m))
    import torchvision

    return torchvision


# ----------------------------------------------------------------------------- NAS (DARTS codebase)
Genotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")

NASNET = Genotype(
    normal=[("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 0), ("sep_conv_3x3", 0),
            ("avg_pool_3x3", 1), ("skip_connect", 0), ("avg_pool_3x3", 0), ("avg_pool_3x3", 0),
            ("sep_conv_3x3", 1), ("skip_connect", 1)],
    normal_concat=[2, 3, 4, 5, 6],
    reduce=[("sep_conv_5x5", 1), ("sep_conv_7x7", 0), ("max_pool_3x3", 1), ("sep_conv_7x7", 0),
            ("avg_pool_3x3", 1), ("sep_conv_5x5", 0), ("skip_connect", 3), ("avg_pool_3x3", 2),
            ("sep_conv_3x3", 2), ("max_pool_3x3", 1)],
    reduce_concat=[4, 5, 6])
AMOEBANET = Genotype(
    normal=[("avg_pool_3x3", 0), ("max_pool_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 2),
            ("sep_conv_3x3", 0), ("avg_pool_3x3", 3), ("sep_conv_3x3", 1), ("skip_connect", 1),
            ("skip_connect", 0), ("avg_pool_3x3", 1)],
    normal_concat=[4, 5, 6],
    reduce=[("avg_pool_3x3", 0), ("sep_conv_3x3", 1), ("max_pool_3x3", 0), ("sep_conv_7x7", 2),
            ("sep_conv_7x7", 0), ("avg_pool_3x3", 1), ("max_pool_3x3", 0), ("max_pool_3x3", 1),
            ("conv_7x1_1x7", 0), ("sep_conv_3x3", 5)],
    reduce_concat=[3, 4, 6])
PNASNET = Genotype(
    normal=[("sep_conv_5x5", 0), ("max_pool_3x3", 0), ("sep_conv_7x7", 1), ("max_pool_3x3", 1),
            ("sep_conv_5x5", 1), ("sep_conv_3x3", 1), ("sep_conv_3x3", 4), ("max_pool_3x3", 1),
            ("sep_conv_3x3", 0), ("skip_connect", 1)],
    normal_concat=[2, 3, 4, 5, 6],
    reduce=[("sep_conv_5x5", 0), ("max_pool_3x3", 0), ("sep_conv_7x7", 1), ("max_pool_3x3", 1),
            ("sep_conv_5x5", 1), ("sep_conv_3x3", 1), ("sep_conv_3x3", 4), ("max_pool_3x3", 1),
            ("sep_conv_3x3", 0), ("skip_connect", 1)],
    reduce_concat=[2, 3, 4, 5, 6])
DARTS_V2 = Genotype(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
    reduce_concat=[2, 3, 4, 5])
GENOTYPES = {"nasnet_a": NASNET, "amoebanet_d": AMOEBANET, "pnasnet_5": PNASNET, "darts": DARTS_V2}


def _nas_network(genotype, C=48, layers=14, num_classes=1000):
    """DARTS's ``NetworkImageNet`` (eval mode, no auxiliary head) for ``genotype``."""
    import torch
    from torch import nn

    def relu_conv_bn(ci, co, k, s, p):
        return nn.Sequential(nn.ReLU(), nn.Conv2d(ci, co, k, s, p, bias=False), nn.BatchNorm2d(co))

    def sep_conv(c, k, s, p):
        return nn.Sequential(
            nn.ReLU(), nn.Conv2d(c, c, k, s, p, groups=c, bias=False), nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c, k, 1, p, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))

    def dil_conv(c, k, s, p, d):
        return nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, k, s, p, dilation=d, groups=c, bias=False),
                             nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))

    class FactorizedReduce(nn.Module):
        def __init__(self, ci, co):
            super().__init__()
            self.relu = nn.ReLU()
            self.conv_1 = nn.Conv2d(ci, co // 2, 1, 2, 0, bias=False)
            self.conv_2 = nn.Conv2d(ci, co // 2, 1, 2, 0, bias=False)
            self.bn = nn.BatchNorm2d(co)

        def forward(self, x):
            x = self.relu(x)
            return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))

    ops = {
        "avg_pool_3x3": lambda c, s: nn.AvgPool2d(3, stride=s, padding=1, count_include_pad=False),
        "max_pool_3x3": lambda c, s: nn.MaxPool2d(3, stride=s, padding=1),
        "skip_connect": lambda c, s: nn.Identity() if s == 1 else FactorizedReduce(c, c),
        "sep_conv_3x3": lambda c, s: sep_conv(c, 3, s, 1),
        "sep_conv_5x5": lambda c, s: sep_conv(c, 5, s, 2),
        "sep_conv_7x7": lambda c, s: sep_conv(c, 7, s, 3),
        "dil_conv_3x3": lambda c, s: dil_conv(c, 3, s, 2, 2),
        "dil_conv_5x5": lambda c, s: dil_conv(c, 5, s, 4, 2),
        "conv_7x1_1x7": lambda c, s: nn.Sequential(
            nn.ReLU(), nn.Conv2d(c, c, (1, 7), stride=(1, s), padding=(0, 3), bias=False),
            nn.Conv2d(c, c, (7, 1), stride=(s, 1), padding=(3, 0), bias=False), nn.BatchNorm2d(c)),
    }

    class Cell(nn.Module):
        def __init__(self, c_pp, c_p, c, reduction, reduction_prev):
            super().__init__()
            self.preprocess0 = FactorizedReduce(c_pp, c) if reduction_prev else relu_conv_bn(c_pp, c, 1, 1, 0)
            self.preprocess1 = relu_conv_bn(c_p, c, 1, 1, 0)
            names, self.indices = zip(*(genotype.reduce if reduction else genotype.normal))
            self.concat = list(genotype.reduce_concat if reduction else genotype.normal_concat)
            self.multiplier = len(self.concat)
            self.steps = len(names) // 2
            self._ops = nn.ModuleList(ops[n](c, 2 if reduction and i < 2 else 1)
                                      for n, i in zip(names, self.indices))

        def forward(self, s0, s1):
            states = [self.preprocess0(s0), self.preprocess1(s1)]
            for i in range(self.steps):
                h1 = self._ops[2 * i](states[self.indices[2 * i]])
                h2 = self._ops[2 * i + 1](states[self.indices[2 * i + 1]])
                states.append(h1 + h2)
            return torch.cat([states[i] for i in self.concat], dim=1)

    class NetworkImageNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem0 = nn.Sequential(
                nn.Conv2d(3, C // 2, 3, 2, 1, bias=False), nn.BatchNorm2d(C // 2), nn.ReLU(),
                nn.Conv2d(C // 2, C, 3, 2, 1, bias=False), nn.BatchNorm2d(C))
            self.stem1 = nn.Sequential(nn.ReLU(), nn.Conv2d(C, C, 3, 2, 1, bias=False), nn.BatchNorm2d(C))
            c_pp, c_p, c_cur = C, C, C
            self.cells = nn.ModuleList()
            reduction_prev = True
            for i in range(layers):
                reduction = i in (layers // 3, 2 * layers // 3)
                if reduction:
                    c_cur *= 2
                cell = Cell(c_pp, c_p, c_cur, reduction, reduction_prev)
                reduction_prev = reduction
                self.cells.append(cell)
                c_pp, c_p = c_p, cell.multiplier * c_cur
            self.global_pooling = nn.AvgPool2d(7)
            self.classifier = nn.Linear(c_p, num_classes)

        def forward(self, x):
            s0 = self.stem0(x)
            s1 = self.stem1(s0)
            for cell in self.cells:
                s0, s1 = s1, cell(s0, s1)
            out = self.global_pooling(s1)
            return self.classifier(out.view(out.size(0), -1))

    return NetworkImageNet()


def _transformer():
    """``torch.nn.Transformer`` base (Vaswani et al. 2017): d_model 512, 8 heads, 6+6 layers, ff 2048.

    Its fast-path checks defeat torch.fx, so :func:`cosma_fast.from_torch` falls back
    to torch.export: attention is split into its projections and
    ``scaled_dot_product_attention``.
    """
    import torch

    return torch.nn.Transformer(d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6,
                                dim_feedforward=2048, batch_first=True)


TRANSFORMER_SEQ = 64

# name -> (description, builder returning (module, example input shapes))
def _spec(name):
    image = [(1, 3, 224, 224)]
    video = [(1, 3, 16, 224, 224)]
    if name in GENOTYPES:
        return f"DARTS NetworkImageNet(C=48, layers=14) with the {name} genotype", lambda: _nas_network(
            GENOTYPES[name]), image
    if name == "transformer":
        return (f"torch.nn.Transformer(d_model=512, nhead=8, 6+6 layers, dim_feedforward=2048, batch_first), "
                f"src/tgt 1x{TRANSFORMER_SEQ}x512"), _transformer, [(1, TRANSFORMER_SEQ, 512)] * 2
    tv = _import_torchvision()
    if name in ("r2plus1d_18", "s3d"):
        return f"torchvision.models.video.{name}(weights=None)", lambda: getattr(tv.models.video, name)(), video
    if name in ("fcn_resnet50", "lraspp_mobilenet_v3_large", "deeplabv3_resnet50"):
        return (f"torchvision.models.segmentation.{name}(weights=None, weights_backbone=None)",
                lambda: getattr(tv.models.segmentation, name)(weights=None, weights_backbone=None), image)
    if name in ("resnet50", "densenet121", "resnext50_32x4d", "vit_b_16"):
        return f"torchvision.models.{name}(weights=None)", lambda: getattr(tv.models, name)(), image
    raise KeyError(f"no zoo model named {name!r}")


def build(name: str) -> cf.Graph:
    """Trace model ``name`` (no budgets yet) at batch 1, 8-bit data."""
    import torch

    torch.manual_seed(0)
    desc, make, shapes = _spec(name)
    with torch.device("meta"):
        module = make()
        inputs = tuple(torch.empty(s) for s in shapes)
    g = cf.from_torch(module, inputs, dtype_bytes=1, name=name)
    traced_by = "torch.export" if g.meta.get("source") == "torch.export" else "torch.fx + ShapeProp"
    meta = {"source": desc, "traced_by": f"cosma_fast.from_torch ({traced_by}, meta device)",
            "torch": torch.__version__, "dtype_bytes": 1, "batch": 1,
            "input_shapes": [list(s) for s in shapes], "n_ops": g.n_ops, "n_tensors": g.n_tensors,
            "weight_bytes": int(g.tensor_size[g.tensor_kind == cf.WEIGHT].sum()),
            "activation_bytes": int(g.tensor_size[g.tensor_kind != cf.WEIGHT].sum())}
    return cf.Graph.from_dict(dict(g.to_dict(), meta=meta))


def compute_budgets(g: cf.Graph) -> dict:
    """Budgets with and without weights (DESIGN.md section 1), labelled exact or upper bound."""
    out = {}
    for key, inc in (("with_weights", True), ("activations_only", False)):
        try:
            b = cf.budgets(g, include_weights=inc, time_limit=30.0)
            out[key] = {"M_R": b.m_r, "M_H": b.m_h, "M_P": b.m_p, "M_P_exact": b.m_p_exact,
                        "M_P_method": "cosma_fast.budgets"}
        except ImportError:  # the schedule search is not installed: model-order peak, an upper bound
            gw = g.with_weights(inc)
            mr = zoo.m_r(gw)
            mp = max(mr, zoo.order_peak(gw))
            out[key] = {"M_R": mr, "M_H": (mr + mp) // 2, "M_P": mp, "M_P_exact": False,
                        "M_P_method": "peak of the model order (upper bound)"}
    return out


def with_budgets(g: cf.Graph, budgets: dict) -> cf.Graph:
    return cf.Graph.from_dict(dict(g.to_dict(), meta=dict(g.meta, budgets=budgets)))


def encode(g: cf.Graph) -> bytes:
    """Deterministic file bytes: sorted compact JSON, gzip with mtime 0 and no file name."""
    text = json.dumps(g.to_dict(), sort_keys=True, separators=(",", ":")).encode("utf-8")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as f:
        f.write(text)
    return buf.getvalue()


def regenerate(name: str, *, reuse_budgets: bool = True) -> bytes:
    """The bytes of ``zoo_data/NAME.json.gz``; budgets are carried over when the graph is unchanged."""
    g = build(name)
    path = ZOO_DIR / f"{name}.json.gz"
    budgets = None
    if reuse_budgets and path.exists():
        old = cf.Graph.from_json(path)
        if encode(cf.Graph.from_dict(dict(old.to_dict(), meta={k: v for k, v in old.meta.items()
                                                               if k != "budgets"}))) == encode(g):
            budgets = old.meta.get("budgets")
    if budgets is None:
        budgets = compute_budgets(g)
    return encode(with_budgets(g, budgets))


def main(argv: list[str]) -> int:
    check = "--check" in argv
    names = [a for a in argv if not a.startswith("--")] or zoo.MODELS
    bad = 0
    for name in names:
        data = regenerate(name)
        path = ZOO_DIR / f"{name}.json.gz"
        if check:
            same = path.exists() and path.read_bytes() == data
            bad += not same
            print(f"{name}: {'same' if same else 'DIFFERENT'}")
        else:
            path.write_bytes(data)
            g = cf.Graph.from_json(path)
            b = g.meta["budgets"]["with_weights"]
            print(f"{name}: {g.n_ops} ops, {g.n_tensors} tensors, M_R {b['M_R']}, M_P {b['M_P']}"
                  f"{'' if b['M_P_exact'] else ' (upper bound)'}, {len(data)} bytes")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
