# lit configuration for longctx: dialect and pass tests (.mlir), importer and
# tool tests (.test), end-to-end numeric tests. Unit tests (gtest) live in
# unit/ with their own configuration.
import os
import subprocess

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "longctx"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.longctx_obj_root, "test")
config.excludes = ["lit.cfg.py", "lit.site.cfg.py", "CMakeLists.txt", "unit", "models", "e2e",
                   "Inputs"]

llvm_config.use_default_substitutions()
llvm_config.with_system_environment(["HOME", "TMPDIR"])
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.longctx_tools_dir, append_path=True)
# Small thread counts keep parallel test runs from oversubscribing 2 cores.
llvm_config.with_environment("OMP_NUM_THREADS", "1")
llvm_config.with_environment("OPENBLAS_NUM_THREADS", "1")

python = config.python_executable
config.substitutions.append(("%python", python))
config.substitutions.append(("%src_root", config.longctx_src_root))
config.substitutions.append(("%e2e", os.path.join(config.longctx_src_root, "test", "e2e")))
config.substitutions.append(("%models", os.path.join(config.longctx_src_root, "test", "models")))

tools = ["longctx-opt", "longctx-compile", "longctx-run", "longctx-dump", "longctx-models"]
llvm_config.add_tool_substitutions([ToolSubst(t, unresolved="fatal") for t in tools],
                                   [config.longctx_tools_dir])


def python_has(module):
    try:
        return subprocess.run([python, "-c", "import " + module], capture_output=True,
                              timeout=120).returncode == 0
    except Exception:
        return False


# End-to-end references need numpy + onnx (Debian: python3-numpy python3-onnx);
# PyTorch comparisons run only where python3-torch is installed.
if python_has("numpy") and python_has("onnx"):
    config.available_features.add("onnx-python")
if python_has("torch"):
    config.available_features.add("torch")
# A CUDA device is present when the runtime's probe finds one.
if config.longctx_enable_cuda:
    probe = subprocess.run([os.path.join(config.longctx_tools_dir, "longctx-run"), "--list-devices"],
                           capture_output=True, text=True)
    if probe.returncode == 0 and "cuda:0:" in probe.stdout:
        config.available_features.add("cuda")
# Generating CUDA kernels needs the toolkit's NVRTC (loaded at run time), not
# a GPU; ptxas checks the PTX.
cuda_home = os.environ.get("CUDA_HOME", "/usr/local/cuda")
if any(os.path.exists(os.path.join(cuda_home, "lib64", lib))
       for lib in ("libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12")):
    config.available_features.add("nvrtc")
if os.path.exists(os.path.join(cuda_home, "bin", "ptxas")):
    config.available_features.add("ptxas")
    config.substitutions.append(("%ptxas", os.path.join(cuda_home, "bin", "ptxas")))
