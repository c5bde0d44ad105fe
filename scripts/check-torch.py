#!/usr/bin/python3
"""diffsim's AAS against PyTorch's, at every attention layer of U-Nets exported by PyTorch's own
exporter (torch.onnx.export), in layouts unlike SD 1.5's.

Issue 23's regression came from such a model: a miniature SD-style U-Net with two down blocks
and one downsample, a fixed 8x8 latent (64 px), and the same U-Net wrapped in a module (every
node name under a /unet prefix). This script builds both with seeded random weights (the
classes scripts/train-toy-sd.py trains: diffusers' structure and names), exports each as a
diffusers/optimum folder, runs `diffsim sweep --json` (every layer) on two images, and computes
the same scores in PyTorch from the same inputs: the images' latents from the PyTorch VAE, the
noise diffsim adds (schedule.Noise, written by scripts/internal/noise), the empty prompt's
embedding, one U-Net forward with hooks on every attention's to_q, to_k and to_v, then
docs/method.md's score in float64. It prints a table and exits 1 when any layer differs by more
than --tol, or when diffsim leaves a layer out or reports another working size or grid.

    apt-get install -y python3-torch python3-onnx python3-pil
    /usr/bin/python3 scripts/check-torch.py                 # builds diffsim; about a minute
    /usr/bin/python3 scripts/check-torch.py --keep /tmp/x   # keep the folders and images

Weights are rounded to float16 before export (the exporter here stores float16 weights), so
PyTorch and the ONNX graph hold the same numbers; what remains is float32 rounding in ONNX
Runtime's kernels against PyTorch's.
"""

import argparse
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SEED = 2334  # diffsim's default noise seed (the reference's)
SIZE = 64    # 8x8 latents
CHANNELS = (32, 48)  # two down blocks: CrossAttnDown with one downsample, then Down
HEADS = 2
TEXT_WIDTH = 32
SCALING = 0.5


def load_trainer():
    spec = importlib.util.spec_from_file_location("train_toy_sd", os.path.join(HERE, "train-toy-sd.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Wrapped(nn.Module):
    """The same U-Net one module down: the exporter names its nodes /unet/…"""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states):
        return self.unet(sample, timestep, encoder_hidden_states)


def round_to_fp16(*modules):
    with torch.no_grad():
        for m in modules:
            for p in m.parameters():
                p.copy_(p.half().float())


def export(tt, out, unet_module, unet, vae, text):
    tt.SIZE = SIZE
    cfg = {"text_width": TEXT_WIDTH, "unet_channels": CHANNELS, "heads": HEADS, "vae_channels": (16, 32, 64, 64)}
    tt.export_folder(out, unet, vae, text, SCALING, cfg)
    # export_folder writes toy-sd's U-Net (a 16x16 sample, four blocks); this one takes a fixed
    # 8x8 sample, and its config says what it is.
    tt.export_onnx(unet_module, (torch.randn(2, 4, SIZE // 8, SIZE // 8), torch.tensor([500.0, 10.0]),
                                 torch.randn(2, 77, TEXT_WIDTH)),
                   os.path.join(out, "unet", "model.onnx"), ["sample", "timestep", "encoder_hidden_states"],
                   ["out_sample"], tt.UNET_AXES)
    cfg_path = os.path.join(out, "unet", "config.json")
    with open(cfg_path) as f:
        c = json.load(f)
    c.update({"sample_size": SIZE // 8, "block_out_channels": list(CHANNELS),
              "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
              "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"]})
    tt.write_json(cfg_path, c)


def images(dst):
    """Two 64 px crops of the repository's sample photographs: at the working size already, so
    no resampling stands between the two pipelines."""
    paths = []
    for name, box in (("chelsea.png", (150, 40, 214, 104)), ("coffee.png", (200, 100, 264, 164))):
        p = os.path.join(dst, name)
        Image.open(os.path.join(REPO, "testdata", "samples", name)).convert("RGB").crop(box).save(p)
        paths.append(p)
    return paths


def noise(tmp, n):
    exe = os.path.join(tmp, "noise")
    subprocess.run(["go", "build", "-o", exe, "./scripts/internal/noise"], cwd=REPO, check=True)
    raw = subprocess.run([exe, str(SEED), str(n)], check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype="<f4").copy()


def alphas_cumprod():
    """ᾱ_t as features/schedule computes it, in float64."""
    lo, hi = math.sqrt(0.00085), math.sqrt(0.012)
    out, prod = [], 1.0
    for i in range(1000):
        b = lo + (hi - lo) * i / 999
        prod *= 1 - b * b
        out.append(prod)
    return out


def torch_scores(tt, unet, vae, text, paths, eps, ts):
    """{(layer, t): score}: docs/method.md's AAS from PyTorch's Q, K and V."""
    enc = tt.VAEEncoderExport(vae).eval()
    lat = []
    with torch.no_grad():
        for p in paths:
            px = np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / np.float32(255)
            px = (px - np.float32(0.5)) / np.float32(0.5)
            moments = enc(torch.from_numpy(px.transpose(2, 0, 1).copy())[None])
            lat.append((moments[0, :4] * np.float32(SCALING)).numpy().astype(np.float32))
        ctx = text.eval()(tt.empty_prompt_ids()).repeat(2, 1, 1)

    taps = {}
    hooks = []
    attn = [(n, m) for n, m in unet.named_modules() if isinstance(m, tt.Attention)]
    for name, m in attn:
        for proj in ("to_q", "to_k", "to_v"):
            def hook(_, __, out, key=(name, proj)):
                taps[key] = out.detach().double()
            hooks.append(getattr(m, proj).register_forward_hook(hook))

    acp = alphas_cumprod()
    scores = {}
    for t in ts:
        ab = float(acp[t])
        a, s = np.float32(math.sqrt(ab)), np.float32(math.sqrt(1 - ab))
        zt = np.stack([a * z + s * eps.reshape(z.shape) for z in lat]).astype(np.float32)
        taps.clear()
        with torch.no_grad():
            unet.eval()(torch.from_numpy(zt), torch.tensor([float(t)] * 2), ctx)
        for name, m in attn:
            q, k, v = (taps[(name, p)] for p in ("to_q", "to_k", "to_v"))
            scale = (q.shape[-1] // m.heads) ** -0.5

            def heads(x):
                b, n, c = x.shape
                return x.reshape(b, n, m.heads, c // m.heads).permute(0, 2, 1, 3)

            q, k, v = heads(q), heads(k), heads(v)

            def att(qi, kj, vj):
                return torch.softmax(qi @ kj.transpose(-1, -2) * scale, dim=-1) @ vj

            def cos(x, y):
                x, y = x.flatten(), y.flatten()
                return float(x @ y / (x.norm() * y.norm()))

            ab_ = cos(att(q[0], k[0], v[0]), att(q[0], k[1], v[1]))
            ba_ = cos(att(q[1], k[1], v[1]), att(q[1], k[0], v[0]))
            scores[(name, t)] = (ab_ + ba_) / 2
    for h in hooks:
        h.remove()
    return scores


def diffsim(exe, folder, paths, ts):
    env = dict(os.environ, DIFFSIM_CACHE=os.path.join(os.path.dirname(exe), "cache"), DIFFSIM_MEMO="off")

    def run(*args):
        p = subprocess.run([exe, *args], env=env, capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"check-torch: diffsim {' '.join(args)}: exit {p.returncode}\n{p.stderr}")
        return p.stdout

    sweep = json.loads(run("sweep", paths[0], paths[1], "--model", folder, "--t", ",".join(map(str, ts)),
                           "--json", "--no-server", "--quiet"))
    # score at one layer runs the U-Net cut down to it, with its own tap shapes: the path
    # issue 23's regression broke (score --layer Mid).
    scores = []
    for layer in sweep["layers"]:
        if layer["kind"] == "self":
            scores.append(json.loads(run("score", paths[0], paths[1], "--model", folder, "--layer",
                                         str(layer["index"]), "--t", str(ts[0]), "--json", "--no-server")))
    return sweep["scores"], scores, run("models", "inspect", folder)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tol", type=float, default=1e-5, help="largest |diffsim − PyTorch| allowed (default 1e-5)")
    ap.add_argument("--t", default="101,501", help="timesteps (default 101,501)")
    ap.add_argument("--seed", type=int, default=7, help="the weights' seed (default 7)")
    ap.add_argument("--keep", help="keep the folders and images in this folder")
    a = ap.parse_args()
    ts = [int(x) for x in a.t.split(",")]
    torch.set_num_threads(1)
    # torch 1.13's exporter warns about prim::Constant shape inference on every export.
    warnings.filterwarnings("ignore", category=UserWarning)
    tt = load_trainer()

    tmp = a.keep or tempfile.mkdtemp(prefix="diffsim-check-torch.")
    os.makedirs(tmp, exist_ok=True)
    try:
        if not os.environ.get("ONNXRUNTIME_LIB"):
            lib = subprocess.run([os.path.join(HERE, "setup-runtime.sh")], check=True, capture_output=True, text=True)
            os.environ["ONNXRUNTIME_LIB"] = lib.stdout.strip()
        print("building diffsim…", file=sys.stderr)
        exe = os.path.join(tmp, "diffsim")
        subprocess.run(["go", "build", "-o", exe, "."], cwd=REPO, check=True)
        torch.manual_seed(a.seed)
        unet = tt.UNet(ch=CHANNELS, layers=2, heads=HEADS, cross_dim=TEXT_WIDTH, ff_mult=2)
        vae = tt.VAE()
        text = tt.TextEncoder(d=TEXT_WIDTH)
        round_to_fp16(unet, vae, text)
        paths = images(tmp)
        eps = noise(tmp, 4 * (SIZE // 8) ** 2)
        want = torch_scores(tt, unet, vae, text, paths, eps, ts)

        worst = 0.0
        failures = []
        for label, module in (("miniature", unet), ("wrapped", Wrapped(unet))):
            folder = os.path.join(tmp, label)
            print(f"exporting the {label} U-Net…", file=sys.stderr)
            export(tt, folder, module, unet, vae, text)
            recs, singles, inspect = diffsim(exe, folder, paths, ts)
            got = {}
            for r in recs:
                if r.get("size") != SIZE:
                    failures.append(f"{label}: diffsim scored at {r.get('size')} px, want {SIZE}")
                got[(r["layer"].removeprefix("unet."), r["t"])] = r["score"]
            for r in singles:
                key = (r["layer"].removeprefix("unet."), r["t"])
                d = abs(r["score"] - want[key])
                worst = max(worst, d)
                if d > a.tol:
                    failures.append(f"{label}: score --layer {key[0]} --t {key[1]}: {r['score']:.8f}, PyTorch {want[key]:.8f}")
            print(f"\n{label}: score --layer L (the U-Net cut down to L) at t={ts[0]}, {len(singles)} self-attention layers:"
                  f" largest difference {max((abs(r['score'] - want[(r['layer'].removeprefix('unet.'), r['t'])]) for r in singles), default=float('nan')):.1e}")
            print(f"\n{label}: diffsim sweep (every layer) against PyTorch, {len(want)} (layer, t)")
            print(f"| layer | t | diffsim | PyTorch | difference |")
            print(f"|---|---|---|---|---|")
            for (layer, t), w in sorted(want.items(), key=lambda kv: (kv[0][1], kv[0][0])):
                g = got.get((layer, t))
                if g is None:
                    cross_on_text = layer.endswith("attn2")
                    if not cross_on_text:
                        failures.append(f"{label}: diffsim has no score for {layer} at t={t}")
                    print(f"| {layer} | {t} | (left out{': cross-attention on text' if cross_on_text else ''}) | {w:.8f} | |")
                    continue
                d = abs(g - w)
                worst = max(worst, d)
                if d > a.tol:
                    failures.append(f"{label}: {layer} at t={t}: diffsim {g:.8f}, PyTorch {w:.8f}")
                print(f"| {layer} | {t} | {g:.8f} | {w:.8f} | {d:.1e} |")
            if f"{SIZE} px" not in inspect or " 8x8 " not in inspect:
                failures.append(f"{label}: models inspect does not say {SIZE} px and an 8×8 grid:\n{inspect}")
        print(f"\nlargest difference {worst:.2e} (tolerance {a.tol:g})")
        if failures:
            print("\n".join(failures), file=sys.stderr)
            sys.exit(1)
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
