"""The analyzer's result: rows in execution order, totals, grouping, and its text forms.

Units in the data are exact counts: memory in bytes, params, MACs (multiply-adds), all for the
whole batch. The table shows the lecture's units: memory (KB = bytes/1024), params (k = /1000),
MACs (M = /1e6); `flops=True` shows FLOPs = 2 x MACs instead.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..errors import InvalidArgumentError
from ..results import to_json
from .memory import TrainingMemory, training_memory

# Rows of these kinds have no parameters, no MACs and no counted memory: the table hides them
# unless asked (all_layers=True), the data keeps them.
HIDDEN_KINDS = frozenset({"act", "dropout", "identity"})


@dataclass
class LayerRow:
    name: str
    type: str
    kind: str  # conv, linear, pool, norm, act, dropout, identity, flatten, other, group
    in_shape: tuple[int, ...]  # one sample: (C, H, W), or (features,)
    out_shape: tuple[int, ...]
    filters: int | None = None  # output channels of a conv, out_features of a linear layer
    kernel: tuple[int, ...] | None = None
    stride: tuple[int, ...] | None = None
    pad: tuple[int, ...] | str | None = None
    groups: int | None = None
    memory: int = 0  # bytes of output (whole batch)
    params: int = 0
    macs: int = 0  # multiply-adds (whole batch)
    rf: tuple[int, ...] | None = None  # receptive field on the input, per spatial dim
    eff_stride: tuple[int, ...] | None = None  # input pixels between neighbouring outputs
    n_layers: int = 1  # rows merged into this one (aggregate)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        d["flops"] = self.flops
        return d


def _dims(t: tuple[int, ...] | str | None) -> str:
    if t is None:
        return ""
    if isinstance(t, str):
        return t
    return str(t[0]) if len(set(t)) == 1 else "x".join(map(str, t))


def _num(v: float) -> str:
    """Like the seed's tables: whole numbers with separators; small values keep a decimal."""
    if v == 0:
        return "0"
    if abs(v) >= 10:
        return f"{v:,.0f}"
    if abs(v) >= 0.1:
        return f"{v:.1f}"
    return f"{v:.2g}"


@dataclass
class Report:
    model_name: str
    input_size: tuple[int, ...]
    batch_size: int
    rows: list[LayerRow]
    module_types: dict[str, str] = field(default_factory=dict, repr=False)
    module_io: dict[str, tuple] = field(default_factory=dict, repr=False)  # block -> (in, out)
    unused_params: int = 0  # parameters of modules that never ran (e.g. auxiliary heads in eval)
    depth: int | None = None

    # -- totals --------------------------------------------------------------------------------
    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def flops(self) -> int:
        return 2 * self.total_macs

    @property
    def total_memory(self) -> int:
        """Bytes of all counted layer outputs (the seeds' rule), whole batch; input excluded."""
        return sum(r.memory for r in self.rows)

    @property
    def input_memory(self) -> int:
        n = self.batch_size
        for s in self.input_size:
            n *= s
        return n * 4

    def totals(self) -> dict[str, int]:
        return {"params": self.total_params, "macs": self.total_macs, "flops": self.flops,
                "memory_bytes": self.total_memory, "input_bytes": self.input_memory,
                "unused_params": self.unused_params}

    def visible_rows(self, all_layers: bool = False) -> list[LayerRow]:
        return [r for r in self.rows if all_layers or r.kind not in HIDDEN_KINDS]

    def find(self, name: str) -> LayerRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no row named {name!r}; rows: {', '.join(r.name for r in self.rows)}")

    # -- grouping --------------------------------------------------------------------------------
    def aggregate(self, depth: int) -> Report:
        """Rows merged by the first `depth` parts of their dotted names (block, stage, ...).

        depth=1 on GoogLeNet gives one row per inception module; on ResNet one per stage.
        """
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
            raise InvalidArgumentError(f"depth must be a positive integer, got {depth!r}")
        groups: dict[str, list[LayerRow]] = {}
        for r in self.rows:
            key = ".".join(r.name.split(".")[:depth])
            groups.setdefault(key, []).append(r)
        rows = []
        for key, rs in groups.items():
            if len(rs) == 1 and rs[0].name == key:
                rows.append(rs[0])
                continue
            kinds = {r.kind for r in rs}
            # a block's own output where it ran as a module (an inception block's concat)
            io = self.module_io.get(key, (rs[0].in_shape, rs[-1].out_shape))
            rows.append(LayerRow(
                name=key, type=self.module_types.get(key.split("#")[0], rs[0].type),
                kind=kinds.pop() if len(kinds) == 1 and len(rs) == 1 else "group",
                in_shape=io[0], out_shape=io[1],
                memory=sum(r.memory for r in rs), params=sum(r.params for r in rs),
                macs=sum(r.macs for r in rs), rf=rs[-1].rf, eff_stride=rs[-1].eff_stride,
                n_layers=sum(r.n_layers for r in rs)))
            main = [r for r in rs if r.kind in ("conv", "pool", "linear")]
            if len(main) == 1:  # e.g. conv + BN + ReLU: the block reads as its conv
                for k in ("filters", "kernel", "stride", "pad", "groups"):
                    setattr(rows[-1], k, getattr(main[0], k))
        return replace(self, rows=rows, depth=depth)

    # -- derived estimates ------------------------------------------------------------------------
    def training_memory(self, batch_size: int | None = None,
                        optimizer: str = "sgd") -> TrainingMemory:
        """Training-memory estimate for this model (memory.py states the assumptions)."""
        return training_memory(self, batch_size=batch_size, optimizer=optimizer)

    # -- text forms ----------------------------------------------------------------------------
    def _cells(self, r: LayerRow, flops: bool) -> list[str]:
        ins, outs = r.in_shape, r.out_shape
        ops = r.flops if flops else r.macs
        return [r.name, str(ins[0]) if ins else "", _dims(ins[1:]) if len(ins) > 1 else "",
                "" if r.filters is None else str(r.filters), _dims(r.kernel), _dims(r.stride),
                _dims(r.pad), str(outs[0]) if outs else "",
                _dims(outs[1:]) if len(outs) > 1 else "", _num(r.memory / 1024),
                _num(r.params / 1000), _num(ops / 1e6)]

    def headers(self, flops: bool = False, rf: bool = False) -> list[str]:
        h = ["Layer", "C", "H/W", "filters", "kernel", "stride", "pad", "C", "H/W",
             "memory (KB)", "params (k)", "FLOP (M)" if flops else "MACs (M)"]
        return h + (["RF", "eff. stride"] if rf else [])

    def _body(self, flops: bool, all_layers: bool, rf: bool) -> tuple[list[list[str]], list[str]]:
        body = []
        for r in self.visible_rows(all_layers):
            cells = self._cells(r, flops)
            if rf:
                cells += [_dims(r.rf), _dims(r.eff_stride)]
            body.append(cells)
        ops = self.flops if flops else self.total_macs
        total = ["total"] + [""] * 8 + [_num(self.total_memory / 1024), _num(self.total_params / 1000),
                                        _num(ops / 1e6)] + (["", ""] if rf else [])
        return body, total

    def caption(self, flops: bool = False) -> str:
        what = "FLOP = 2 x multiply-adds" if flops else "MACs = multiply-adds (the seeds' 'flop')"
        return (f"{self.model_name}, input {'x'.join(map(str, self.input_size))}, batch "
                f"{self.batch_size}; memory = output elements x 4 bytes; {what}")

    def footer(self) -> str:
        lines = [f"params: {self.total_params:,}   MACs: {self.total_macs:,} "
                 f"({self.total_macs / 1e9:.2f} G)   FLOPs: {self.flops / 1e9:.2f} G   "
                 f"activation memory: {self.total_memory / 2**20:.2f} MB"]
        if self.unused_params:
            lines.append(f"not run (not counted): {self.unused_params:,} params of modules the "
                         "inference pass does not call")
        return "\n".join(lines)

    def __str__(self) -> str:  # print(report) shows the table, as torchinfo.summary does
        return self.to_table()

    def _repr_html_(self) -> str:  # a notebook shows the same table as HTML
        from ..display import html_table

        body, total = self._body(False, False, False)
        return html_table(self.headers(False, False), [*body, total], self.caption(False), self.footer())

    def to_table(self, flops: bool = False, all_layers: bool = False, rf: bool = False) -> str:
        """Fixed-width text table with the seeds' columns, then totals."""
        body, total = self._body(flops, all_layers, rf)
        head = self.headers(flops, rf)
        group = (["", "Input size", "", "Layer", "", "", "", "Output size", ""]
                 + [""] * (len(head) - 9))
        allrows = [group, head] + body + [total]
        widths = [max(len(r[i]) for r in allrows) for i in range(len(head))]

        def line(cells: list[str]) -> str:
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        sep = "-" * len(line(head))
        out = [self.caption(flops), line(group), line(head), sep, *map(line, body), sep,
               line(total), self.footer()]
        return "\n".join(out) + "\n"

    def to_markdown(self, flops: bool = False, all_layers: bool = False, rf: bool = False) -> str:
        body, total = self._body(flops, all_layers, rf)
        head = self.headers(flops, rf)
        head = [h if i not in (1, 2, 7, 8) else ("in " if i < 7 else "out ") + h
                for i, h in enumerate(head)]
        rows = [head, ["---"] + ["---:"] * (len(head) - 1), *body,
                ["**" + c + "**" if c else "" for c in total]]
        md = "\n".join("| " + " | ".join(r) + " |" for r in rows)
        return f"{self.caption(flops)}\n\n{md}\n\n{self.footer()}\n"

    def to_csv(self, all_layers: bool = True) -> str:
        """Every field at full precision (bytes, counts), one row per layer."""
        buf = io.StringIO()
        fields = ["name", "type", "kind", "in_shape", "filters", "kernel", "stride", "pad",
                  "groups", "out_shape", "memory_bytes", "params", "macs", "flops", "rf",
                  "eff_stride"]
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(fields)
        for r in self.visible_rows(all_layers):
            d = r.as_dict()
            d["memory_bytes"] = d["memory"]
            w.writerow(["x".join(map(str, d[f])) if isinstance(d[f], list) else
                        ("" if d[f] is None else d[f]) for f in fields])
        return buf.getvalue()

    def to_dict(self, all_layers: bool = True) -> dict[str, Any]:
        return {"model": self.model_name, "input_size": list(self.input_size),
                "batch_size": self.batch_size, "depth": self.depth,
                "conventions": {"memory": "output elements x bytes per element (float32: 4)",
                                "macs": "multiply-adds; flops = 2 x macs"},
                "totals": self.totals(),
                "rows": [r.as_dict() for r in self.visible_rows(all_layers)]}

    def to_json(self, all_layers: bool = True) -> str:
        return to_json(self.to_dict(all_layers)) + "\n"
