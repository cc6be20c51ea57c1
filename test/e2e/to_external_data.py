"""Rewrites an ONNX model with every initializer in one external data file:
to_external_data.py IN.onnx OUT.onnx (data next to OUT as OUT.data)."""
import os
import sys

import onnx

model = onnx.load(sys.argv[1])
out = sys.argv[2]
onnx.save_model(model, out, save_as_external_data=True, all_tensors_to_one_file=True,
                location=os.path.basename(out) + ".data", size_threshold=0)
