"""Helpers shared by the PyTorch export scripts."""
import os

import numpy as np
import torch.nn.functional as F


def write_gradients(model, input_ids, out_dir):
    """PyTorch autograd reference: next-token cross-entropy, mean over B*(S-1)."""
    model.zero_grad()
    logits = model(input_ids)
    vocab = logits.shape[-1]
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, vocab), input_ids[:, 1:].reshape(-1))
    loss.backward()
    np.save(os.path.join(out_dir, "loss.npy"), loss.detach().numpy().astype(np.float32))
    os.makedirs(os.path.join(out_dir, "grads"), exist_ok=True)
    for name, p in model.named_parameters():
        np.save(os.path.join(out_dir, "grads", name.replace("/", "_") + ".npy"),
                p.grad.numpy().astype(np.float32))
