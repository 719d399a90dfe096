#!/usr/bin/env python3
"""Writes torch_lstm_gru_crf.json, the outside reference for tests/torch_reference.rs.

Everything is computed by PyTorch itself, in float64:

* nn.LSTM and nn.GRU (one layer, time-major (T, B, I) input, gates in PyTorch's order: LSTM
  (i, f, g, o), GRU (r, z, n) with b_hn inside r * (W_hn h + b_hn)): outputs, final h (and c),
  and the gradients, by autograd, of the loss L = sum(output * dy) with respect to the input,
  h0, c0 and every parameter. Weights are written in PyTorch's own layout, weight_ih (G*H, I),
  weight_hh (G*H, H); the Rust test transposes them into firth's input-major (I, G*H).
* The linear-chain CRF of the pytorch-crf package (torchcrf.CRF, the CRF most PyTorch
  BiLSTM-CRF taggers use): per-sequence negative log-likelihood, log partition, Viterbi paths,
  and the gradients of the summed NLL with respect to the emissions, transitions (from i to j
  at [i, j]), start and end transitions. Sequences are padded, time-major (L, B, K), with a
  mask from the lengths.
* torch.optim.Adam (weight decay added to the gradient) and torch.optim.AdamW (decoupled
  weight decay), default betas and eps, over several steps on L = sum(a * w^2 / 2 + b * w), so
  each step's gradient a * w + b depends on where the last step went: the parameter after
  every step.

Usage (needs torch and pytorch-crf; the Rust test does not):

    pip install torch pytorch-crf
    python3 crates/firth-nn/tests/reference/make_torch_reference.py
"""

import json
import os

import torch
from torchcrf import CRF

torch.manual_seed(12)
torch.set_default_dtype(torch.float64)

I, H, T, B, TAGS = 3, 4, 3, 2, 4
LENGTHS = [3, 2]


def flat(t):
    """Row-major list of floats (repr round-trips float64 exactly through JSON)."""
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def recurrent(kind):
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    net = cls(input_size=I, hidden_size=H, num_layers=1, batch_first=False)
    x = torch.randn(T, B, I, requires_grad=True)
    h0 = (0.5 * torch.randn(1, B, H)).requires_grad_()
    dy = torch.randn(T, B, H)
    if kind == "lstm":
        c0 = (0.5 * torch.randn(1, B, H)).requires_grad_()
        y, (h_n, c_n) = net(x, (h0, c0))
    else:
        y, h_n = net(x, h0)
    loss = (y * dy).sum()
    loss.backward()
    out = {
        "input": I,
        "hidden": H,
        "steps": T,
        "batch": B,
        "x": flat(x),
        "h0": flat(h0),
        "dy": flat(dy),
        "loss": float(loss.detach()),
        "output": flat(y),
        "h_n": flat(h_n),
        "grad_x": flat(x.grad),
        "grad_h0": flat(h0.grad),
    }
    for name in ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]:
        p = getattr(net, name)
        short = name[: -len("_l0")]
        out[short] = flat(p)
        out["grad_" + short] = flat(p.grad)
    if kind == "lstm":
        out["c0"] = flat(c0)
        out["c_n"] = flat(c_n)
        out["grad_c0"] = flat(c0.grad)
    return out


def crf():
    model = CRF(TAGS, batch_first=False)
    with torch.no_grad():
        for p in [model.transitions, model.start_transitions, model.end_transitions]:
            p.uniform_(-1.0, 1.0)
    L = max(LENGTHS)
    emissions = (1.5 * torch.randn(L, B, TAGS)).requires_grad_()
    tags = torch.randint(0, TAGS, (L, B))
    mask = torch.tensor([[t < n for n in LENGTHS] for t in range(L)], dtype=torch.bool)
    # Padded positions hold tag 0, as firth's batches do; the mask makes them irrelevant.
    tags = tags * mask.long()
    nll = -model(emissions, tags, mask=mask, reduction="none")
    log_z = model._compute_normalizer(emissions, mask)
    paths = model.decode(emissions, mask=mask)
    nll.sum().backward()
    return {
        "tags": TAGS,
        "steps": L,
        "batch": B,
        "lengths": LENGTHS,
        "emissions": flat(emissions),
        "gold": [int(v) for v in tags.reshape(-1).tolist()],
        "transitions": flat(model.transitions),
        "start": flat(model.start_transitions),
        "end": flat(model.end_transitions),
        "nll": flat(nll),
        "log_z": flat(log_z),
        "viterbi": paths,
        "grad_emissions": flat(emissions.grad),
        "grad_transitions": flat(model.transitions.grad),
        "grad_start": flat(model.start_transitions.grad),
        "grad_end": flat(model.end_transitions.grad),
    }


def optimizer_trajectory(cls):
    lr, weight_decay, steps = 0.05, 0.1, 6
    w0 = [0.8, -0.3, 0.05]
    a = [1.0, 3.0, 0.5]
    b = [0.2, -0.4, 1e-3]
    w = torch.tensor(w0, requires_grad=True)
    opt = cls([w], lr=lr, weight_decay=weight_decay)
    trajectory = []
    for _ in range(steps):
        opt.zero_grad()
        loss = (0.5 * torch.tensor(a) * w * w + torch.tensor(b) * w).sum()
        loss.backward()
        opt.step()
        trajectory.append(flat(w))
    return {
        "lr": lr,
        "weight_decay": weight_decay,
        "w0": w0,
        "a": a,
        "b": b,
        "trajectory": trajectory,
    }


def main():
    import torchcrf

    fixture = {
        "generated_by": "crates/firth-nn/tests/reference/make_torch_reference.py",
        "torch_version": torch.__version__,
        "pytorch_crf_version": getattr(torchcrf, "__version__", "unknown"),
        "lstm": recurrent("lstm"),
        "gru": recurrent("gru"),
        "crf": crf(),
        "adam": optimizer_trajectory(torch.optim.Adam),
        "adamw": optimizer_trajectory(torch.optim.AdamW),
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_lstm_gru_crf.json")
    with open(path, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
