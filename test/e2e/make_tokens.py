"""Writes random int64 token ids of a given shape as .npy: make_tokens.py OUT.npy B S VOCAB [SEED]."""
import sys

import numpy as np

out, batch, seq, vocab = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
seed = int(sys.argv[5]) if len(sys.argv) > 5 else 0
np.save(out, np.random.RandomState(seed).randint(0, vocab, size=(batch, seq)).astype(np.int64))
