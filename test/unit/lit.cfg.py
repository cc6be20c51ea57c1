# gtest binaries run through lit, so one `lit` run reports every test.
import os

import lit.formats

config.name = "longctx-unit"
config.test_format = lit.formats.GoogleTest(".", "Tests")
config.test_source_root = os.path.join(config.longctx_obj_root, "test", "unit")
config.test_exec_root = config.test_source_root
config.environment["OMP_NUM_THREADS"] = "2"
config.environment["OPENBLAS_NUM_THREADS"] = "1"
