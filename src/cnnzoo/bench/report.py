"""The text report of a benchmark result (the dict that `run` returns)."""

from __future__ import annotations

from typing import Any


def format_report(res: dict[str, Any]) -> str:
    """The result as the table `cnnzoo bench models` prints."""
    lines = _header(res) + [""] + _model_table(res) + _model_notes(res)
    lines += _fastpath_lines(res.get("fastpath")) + _loop_lines(res.get("loop"))
    lines.append(f"\nwall time {res['wall_s']:.1f} s, CPU time {res.get('cpu_s', 0):.1f} s")
    return "\n".join(lines)


def _header(res: dict[str, Any]) -> list[str]:
    m, st = res["machine"], res["settings"]
    return [f"machine: {m['cpu']}, {m['cpu_count']} CPUs, torch {m['torch']} "
            f"({m['torch_threads']} threads), torchvision {m['torchvision']}, device {m['device']}"
            + (f" ({m['gpu']})" if m.get("gpu") else "")
            + (f", load {m['loadavg']} -> {m.get('loadavg_end')}" if m.get("loadavg") else ""),
            f"settings: {st['precision']}, channels_last={st['channels_last']}, "
            f"compile={st['compile']}, warmup {st['warmup']}, {st['reps']} reps x "
            f"{st['iters']} iters per side, ABBA order, medians"]


def _model_table(res: dict[str, Any]) -> list[str]:
    head = f"{'model':20s} {'mode':5s} {'batch':>5s} {'ours img/s':>11s} {'ref img/s':>10s} " \
           f"{'ratio':>6s} {'GMAC/s':>8s}"
    if any(r.get(k, {}).get("ours", {}).get("mfu") for r in res["models"] for k in ("infer", "train")):
        head += f" {'MFU':>6s}"
    lines = [head]
    for r in res["models"]:
        for mode in ("infer", "train"):
            if mode not in r:
                continue
            c = r[mode]
            o, f = c["ours"], c["reference"]
            row = (f"{r['model']:20s} {mode:5s} {c['batch']:5d} {o['images_per_s']:11.1f} "
                   f"{f['images_per_s']:10.1f} {c['ratio']:6.2f} {o.get('gmacs_per_s', 0):8.1f}")
            if o.get("mfu") is not None:
                row += f" {100 * o['mfu']:5.1f}%"
            lines.append(row)
    return lines


def _model_notes(res: dict[str, Any]) -> list[str]:
    lines = [f"  {r['model']}: vs {r['reference']}, weights {r['weights']}, "
             f"max |diff| {r['max_abs_diff']:.2e}, {r.get('macs', 0) / 1e6:.1f} MMAC/img "
             f"({r.get('macs_source', '-')})" for r in res["models"]]
    lines += [f"  skipped {sk['model']}: {sk['reason']}" for sk in res.get("skipped", [])]
    lines += [f"  floor {f['model']} {f['mode']}: {f['images_per_s']:,.0f} img/s vs "
              f"{f['floor_images_per_s']:,.0f} -> {'met' if f['met'] else 'NOT met'}"
              + (f", MFU {100 * f['mfu']:.1f}%" if f.get("mfu") else "")
              for f in res.get("floors", [])]
    return lines


def _fastpath_lines(fp: dict[str, Any] | None) -> list[str]:
    if not fp:
        return []
    lines = ["", "fast path (inference, ours) vs torchvision eager, same weights:"]
    for row in fp.get("rows", []):
        lines.append(f"  {row['model']} batch {row['batch']:3d} "
                     f"{row['backend'] + '/' + row['precision']:16s} "
                     f"{row['fast_images_per_s']:8.1f} img/s vs {row['eager_images_per_s']:8.1f}"
                     f"  x{row['speedup']:.2f}  max |diff| {row['max_abs_diff']:.1e}")
    if fp.get("skipped"):
        lines.append(f"  skipped: {fp['skipped']}")
    return lines


def _loop_lines(lp: dict[str, Any] | None) -> list[str]:
    if not lp:
        return []
    lines = ["", "training loop:"]
    if "skipped" in lp:
        return lines + [f"  skipped: {lp['skipped']}"]
    return lines + [
        f"  {lp['model']} on {lp['data']}, recipe {lp['recipe']}, batch "
        f"{lp['batch']}: ours {lp['ours']['images_per_s']:.0f} img/s, plain "
        f"loop {lp['reference']['images_per_s']:.0f} img/s, ratio {lp['ratio']:.2f}",
        f"  ours on synthetic on-device batches "
        f"{lp['synthetic']['images_per_s']:.0f} img/s: real data runs at "
        f"{100 * lp['real_vs_synthetic']:.0f}% of the synthetic rate"]
