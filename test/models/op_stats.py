#!/usr/bin/python3
"""Print opset imports and op_type counts (with domains) of an ONNX model."""
import argparse
import collections
import sys

import onnx


def op_counts(model):
    """Counter of (domain, op_type) over the main graph."""
    return collections.Counter((n.domain or "", n.op_type) for n in model.graph.node)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("model", nargs="+")
    args = p.parse_args(argv)
    for path in args.model:
        # External weights are irrelevant for op statistics.
        m = onnx.load(path, load_external_data=False)
        imports = ", ".join(f"{i.domain or 'ai.onnx'}:{i.version}" for i in m.opset_import)
        counts = op_counts(m)
        print(f"{path}: {len(m.graph.node)} nodes, {len(m.graph.initializer)} initializers, "
              f"opsets [{imports}]")
        for (domain, op), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"  {n:5d}  {domain + '::' if domain else ''}{op}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
