#!/usr/bin/python3
"""Train the miniature Stable Diffusion that diffsim ships as --model toy-sd.

A one-off tool, not needed to build, test or use diffsim: it remakes the committed model folder
(features/toysd/model), the untrained U-Net beside it (features/toysd/untrained) and the model
card's figures and numbers (docs/toy-sd.md, docs/toy-sd/). It needs Python 3 with Debian's
PyTorch and ONNX packages, and Go to build diffsim for the training images:

    apt-get install -y python3-torch python3-onnx python3-pil libopenblas0-pthread
    nice scripts/train-toy-sd.py            # about half an hour on one CPU core

(libopenblas0-pthread is optional: without it Debian's torch falls back to the reference BLAS and
its linear layers run about 15 times slower.)

What it does, with a fixed seed throughout:
  1. data: `diffsim bench synth` draws 8 styles x 8 contents at 128 px for each training seed
     (1000, 1001, ...); seeds 1-4 are held back for evaluation (seed 1 is `bench synth`'s
     default, the set the README measures);
  2. a small VAE (AutoencoderKL's structure, 128 px -> 16x16x4 latents, the SD 1.x factor 8),
     trained on reconstruction plus a small KL term; the latent scaling factor is measured on
     the training latents, as SD's 0.18215 was;
  3. a small U-Net in UNet2DConditionModel's structure (module names as diffusers': 3 cross-
     attention down blocks and a plain one, a cross-attention mid block, a plain up block and
     3 cross-attention up blocks, two transformer blocks per down block and three per up block,
     so 16 self- and 16 cross-attention layers at 16x16, 8x8, 4x4 and 2x2 tokens), trained for
     DDPM epsilon-prediction with SD's scaled-linear schedule on the VAE latent means,
     unconditionally: its cross-attention reads the empty prompt through a tiny CLIP-shaped
     text encoder (a byte-level vocabulary, no merges), trained along;
  4. held-back denoising loss of the trained U-Net (its EMA weights), of the same network
     before training, and of two baselines that need no training; samples from a 100-step
     DDPM ancestral loop, decoded by the VAE;
  5. export in the diffusers/optimum ONNX layout (model_index.json, unet/, vae_encoder/,
     text_encoder/, tokenizer/, scheduler/) with torch.onnx.export, weights stored as float16
     (cast to float32 inside the graph, so inputs, outputs and arithmetic stay float32).
"""

import os

# One BLAS thread: on a busy machine more threads spin against each other (set before numpy).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import copy
import datetime
import hashlib
import json
import gzip
import math
import platform
import shutil
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

SEED = 29
TRAIN_SEED0 = 1000
EVAL_SEEDS = (1, 2, 3, 4)
SIZE = 128
STYLES = 8
CONTENTS = 8
EVAL_T = (10, 50, 100, 250, 500, 750, 950)
CARD_MARKER = "<!-- The part above is written by scripts/train-toy-sd.py; edit below this line. -->"



# ---- networks (module names as diffusers' and transformers', so the exported graphs read as theirs) ----

def gn(c):
    # Groups of 8 channels. SD's 32 groups fit its 128-1280 channels; here a group of one
    # channel (an 8-channel layer with 8 groups) would be an instance norm, which throws away
    # each image's mean per channel: the decoder then cannot get the palette right.
    return nn.GroupNorm(max(1, c // 8), c, eps=1e-5)


class Attention(nn.Module):
    """diffusers' Attention with its AttnProcessor (baddbmm scores), as the TorchScript exporter writes it."""

    def __init__(self, query_dim, heads, cross_dim=None, bias=False):
        super().__init__()
        cross_dim = cross_dim or query_dim
        self.heads = heads
        self.scale = (query_dim // heads) ** -0.5
        self.to_q = nn.Linear(query_dim, query_dim, bias=bias)
        self.to_k = nn.Linear(cross_dim, query_dim, bias=bias)
        self.to_v = nn.Linear(cross_dim, query_dim, bias=bias)
        self.to_out = nn.ModuleList([nn.Linear(query_dim, query_dim), nn.Dropout(0.0)])

    def head_to_batch_dim(self, x):
        b, s, c = x.shape
        h = self.heads
        return x.reshape(b, s, h, c // h).permute(0, 2, 1, 3).reshape(b * h, s, c // h)

    def batch_to_head_dim(self, x):
        bh, s, d = x.shape
        h = self.heads
        return x.reshape(bh // h, h, s, d).permute(0, 2, 1, 3).reshape(bh // h, s, d * h)

    def forward(self, x, context=None):
        context = x if context is None else context
        q = self.head_to_batch_dim(self.to_q(x))
        k = self.head_to_batch_dim(self.to_k(context))
        v = self.head_to_batch_dim(self.to_v(context))
        if torch.onnx.is_in_onnx_export():
            # What diffusers' get_attention_scores exports.
            empty = torch.empty(q.shape[0], q.shape[1], k.shape[1], dtype=q.dtype, device=q.device)
            scores = torch.baddbmm(empty, q, k.transpose(-1, -2), beta=0, alpha=self.scale)
        else:
            # The same scores for training: torch 1.13's CPU baddbmm now and then returns NaN
            # from finite inputs (seen on the 2x2 mid block within ten steps).
            scores = torch.bmm(q, k.transpose(-1, -2)) * self.scale
        probs = scores.softmax(dim=-1).to(q.dtype)
        out = self.batch_to_head_dim(torch.bmm(probs, v))
        out = self.to_out[1](self.to_out[0](out))
        return out / 1.0


class GEGLU(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.proj = nn.Linear(dim, inner * 2)

    def forward(self, x):
        h, gate = self.proj(x).chunk(2, dim=-1)
        return h * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim, mult):
        super().__init__()
        self.net = nn.ModuleList([GEGLU(dim, dim * mult), nn.Dropout(0.0), nn.Linear(dim * mult, dim)])

    def forward(self, x):
        for m in self.net:
            x = m(x)
        return x


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, heads, cross_dim, ff_mult):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attention(dim, heads, cross_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, ff_mult)

    def forward(self, x, context):
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), context) + x
        return self.ff(self.norm3(x)) + x


class Transformer2DModel(nn.Module):
    def __init__(self, dim, heads, cross_dim, ff_mult):
        super().__init__()
        self.norm = gn(dim)
        self.proj_in = nn.Conv2d(dim, dim, 1)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(dim, heads, cross_dim, ff_mult)])
        self.proj_out = nn.Conv2d(dim, dim, 1)

    def forward(self, x, context):
        b, c, h, w = x.shape
        res = x
        x = self.proj_in(self.norm(x))
        x = x.permute(0, 2, 3, 1).reshape(b, h * w, c)
        for blk in self.transformer_blocks:
            x = blk(x, context)
        x = x.reshape(b, h, w, c).permute(0, 3, 1, 2).contiguous()
        return self.proj_out(x) + res


class ResnetBlock2D(nn.Module):
    def __init__(self, cin, cout, temb):
        super().__init__()
        self.norm1 = gn(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb, cout) if temb else None
        self.norm2 = gn(cout)
        self.dropout = nn.Dropout(0.0)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb=None):
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time_emb_proj is not None:
            h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)
        return x + h


class Downsample2D(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


class Upsample2D(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DownBlock(nn.Module):
    def __init__(self, cin, cout, temb, layers, attn, heads, cross_dim, ff_mult, down):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(cin if i == 0 else cout, cout, temb) for i in range(layers)])
        if attn:
            self.attentions = nn.ModuleList([Transformer2DModel(cout, heads, cross_dim, ff_mult) for _ in range(layers)])
        else:
            self.attentions = None
        self.downsamplers = nn.ModuleList([Downsample2D(cout)]) if down else None

    def forward(self, x, temb, context):
        skips = []
        for i, r in enumerate(self.resnets):
            x = r(x, temb)
            if self.attentions is not None:
                x = self.attentions[i](x, context)
            skips.append(x)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
            skips.append(x)
        return x, skips


class UpBlock(nn.Module):
    def __init__(self, cin, cout, prev, temb, layers, attn, heads, cross_dim, ff_mult, up, skip_chs):
        super().__init__()
        rs = []
        for i in range(layers):
            rin = prev if i == 0 else cout
            rs.append(ResnetBlock2D(rin + skip_chs[i], cout, temb))
        self.resnets = nn.ModuleList(rs)
        if attn:
            self.attentions = nn.ModuleList([Transformer2DModel(cout, heads, cross_dim, ff_mult) for _ in range(layers)])
        else:
            self.attentions = None
        self.upsamplers = nn.ModuleList([Upsample2D(cout)]) if up else None

    def forward(self, x, skips, temb, context):
        for i, r in enumerate(self.resnets):
            x = torch.cat([x, skips.pop()], dim=1)
            x = r(x, temb)
            if self.attentions is not None:
                x = self.attentions[i](x, context)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x)
        return x


class MidBlock(nn.Module):
    def __init__(self, c, temb, heads, cross_dim, ff_mult):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(c, c, temb), ResnetBlock2D(c, c, temb)])
        self.attentions = nn.ModuleList([Transformer2DModel(c, heads, cross_dim, ff_mult)])

    def forward(self, x, temb, context):
        x = self.resnets[0](x, temb)
        x = self.attentions[0](x, context)
        return self.resnets[1](x, temb)


def timestep_embedding(t, dim):
    """diffusers' Timesteps(dim, flip_sin_to_cos=True, downscale_freq_shift=0)."""
    half = dim // 2
    exponent = -math.log(10000) * torch.arange(half, dtype=torch.float32) / half
    emb = t[:, None].float() * torch.exp(exponent)[None, :]
    return torch.cat([torch.cos(emb), torch.sin(emb)], dim=-1)


class TimestepEmbedding(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.linear_1 = nn.Linear(cin, cout)
        self.linear_2 = nn.Linear(cout, cout)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


class UNet(nn.Module):
    """UNet2DConditionModel's structure: CrossAttnDown ×3 + Down, a cross-attention mid block,
    Up + CrossAttnUp ×3, layers_per_block attentions per down block and one more per up block."""

    def __init__(self, ch=(32, 64, 64, 64), layers=2, heads=4, cross_dim=32, ff_mult=2):
        super().__init__()
        self.ch = ch
        temb = ch[0] * 4
        self.conv_in = nn.Conv2d(4, ch[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(ch[0], temb)
        self.down_blocks = nn.ModuleList()
        skip_chs = [ch[0]]
        prev = ch[0]
        for i, c in enumerate(ch):
            last = i == len(ch) - 1
            self.down_blocks.append(DownBlock(prev, c, temb, layers, not last, heads, cross_dim, ff_mult, not last))
            skip_chs += [c] * layers + ([] if last else [c])
            prev = c
        self.mid_block = MidBlock(ch[-1], temb, heads, cross_dim, ff_mult)
        self.up_blocks = nn.ModuleList()
        rev = list(reversed(ch))
        for i, c in enumerate(rev):
            last = i == len(ch) - 1
            n = layers + 1
            skips = [skip_chs.pop() for _ in range(n)]
            self.up_blocks.append(UpBlock(0, c, prev, temb, n, i > 0, heads, cross_dim, ff_mult, not last, skips))
            prev = c
        self.conv_norm_out = gn(ch[0])
        self.conv_out = nn.Conv2d(ch[0], 4, 3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states):
        temb = self.time_embedding(timestep_embedding(timestep, self.ch[0]))
        x = self.conv_in(sample)
        skips = [x]
        for blk in self.down_blocks:
            x, s = blk(x, temb, encoder_hidden_states)
            skips += s
        x = self.mid_block(x, temb, encoder_hidden_states)
        for blk in self.up_blocks:
            x = blk(x, skips, temb, encoder_hidden_states)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class VAEAttention(nn.Module):
    """The VAE mid block's single-head attention (diffusers Attention with biases)."""

    def __init__(self, c):
        super().__init__()
        self.group_norm = gn(c)
        self.attn = Attention(c, 1, bias=True)

    def forward(self, x):
        b, c, h, w = x.shape
        y = self.group_norm(x).reshape(b, c, h * w).transpose(1, 2)
        y = self.attn(y).transpose(1, 2).reshape(b, c, h, w)
        return x + y


class VAEMid(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(c, c, 0), ResnetBlock2D(c, c, 0)])
        self.attentions = nn.ModuleList([VAEAttention(c)])

    def forward(self, x):
        return self.resnets[1](self.attentions[0](self.resnets[0](x)))


class VAEDown(nn.Module):
    def __init__(self, cin, cout, down):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(cin, cout, 0)])
        self.downsamplers = nn.ModuleList([nn.Conv2d(cout, cout, 3, stride=2, padding=1)]) if down else None

    def forward(self, x):
        x = self.resnets[0](x)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
        return x


class VAEUp(nn.Module):
    def __init__(self, cin, cout, up):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(cin, cout, 0)])
        self.upsamplers = nn.ModuleList([Upsample2D(cout)]) if up else None

    def forward(self, x):
        x = self.resnets[0](x)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x)
        return x


class Encoder(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv_in = nn.Conv2d(3, ch[0], 3, padding=1)
        self.down_blocks = nn.ModuleList(
            [VAEDown(ch[max(i - 1, 0)], c, i < len(ch) - 1) for i, c in enumerate(ch)])
        self.mid_block = VAEMid(ch[-1])
        self.conv_norm_out = gn(ch[-1])
        self.conv_out = nn.Conv2d(ch[-1], 8, 3, padding=1)

    def forward(self, x):
        x = self.conv_in(x)
        for b in self.down_blocks:
            x = b(x)
        x = self.mid_block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class Decoder(nn.Module):
    def __init__(self, ch):
        super().__init__()
        rev = list(reversed(ch))
        self.conv_in = nn.Conv2d(4, rev[0], 3, padding=1)
        self.mid_block = VAEMid(rev[0])
        self.up_blocks = nn.ModuleList(
            [VAEUp(rev[max(i - 1, 0)], c, i < len(ch) - 1) for i, c in enumerate(rev)])
        self.conv_norm_out = gn(rev[-1])
        self.conv_out = nn.Conv2d(rev[-1], 3, 3, padding=1)

    def forward(self, z):
        x = self.mid_block(self.conv_in(z))
        for b in self.up_blocks:
            x = b(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class VAE(nn.Module):
    def __init__(self, ch=(16, 32, 64, 64)):
        super().__init__()
        self.encoder = Encoder(ch)
        self.quant_conv = nn.Conv2d(8, 8, 1)
        self.post_quant_conv = nn.Conv2d(4, 4, 1)
        self.decoder = Decoder(ch)

    def moments(self, x):
        return self.quant_conv(self.encoder(x))

    def decode(self, z):
        return self.decoder(self.post_quant_conv(z))


class VAEEncoderExport(nn.Module):
    """What optimum exports as vae_encoder: sample → latent_parameters (mean ‖ log-variance)."""

    def __init__(self, vae):
        super().__init__()
        self.encoder = vae.encoder
        self.quant_conv = vae.quant_conv

    def forward(self, sample):
        return self.quant_conv(self.encoder(sample))


class CLIPAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.scale = (d // heads) ** -0.5
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)

    def forward(self, x, mask):
        b, s, d = x.shape
        h = self.heads
        q = (self.q_proj(x) * self.scale).reshape(b, s, h, d // h).transpose(1, 2)
        k = self.k_proj(x).reshape(b, s, h, d // h).transpose(1, 2)
        v = self.v_proj(x).reshape(b, s, h, d // h).transpose(1, 2)
        w = (q @ k.transpose(-1, -2) + mask).softmax(-1)
        return self.out_proj((w @ v).transpose(1, 2).reshape(b, s, d))


class CLIPLayer(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(d)
        self.self_attn = CLIPAttention(d, heads)
        self.layer_norm2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential()
        self.mlp.fc1 = nn.Linear(d, 4 * d)
        self.mlp.fc2 = nn.Linear(4 * d, d)

    def forward(self, x, mask):
        x = x + self.self_attn(self.layer_norm1(x), mask)
        y = self.mlp.fc1(self.layer_norm2(x))
        y = y * torch.sigmoid(1.702 * y)  # quick_gelu, as CLIP
        return x + self.mlp.fc2(y)


class TextModel(nn.Module):
    def __init__(self, vocab, d, heads, layers, tokens=77):
        super().__init__()
        self.embeddings = nn.Module()
        self.embeddings.token_embedding = nn.Embedding(vocab, d)
        self.embeddings.position_embedding = nn.Embedding(tokens, d)
        self.encoder = nn.Module()
        self.encoder.layers = nn.ModuleList([CLIPLayer(d, heads) for _ in range(layers)])
        self.final_layer_norm = nn.LayerNorm(d)
        self.register_buffer("position_ids", torch.arange(tokens)[None, :], persistent=False)
        mask = torch.full((tokens, tokens), float("-inf")).triu(1)
        self.register_buffer("causal", mask[None, None], persistent=False)

    def forward(self, input_ids):
        x = self.embeddings.token_embedding(input_ids) + self.embeddings.position_embedding(self.position_ids)
        for layer in self.encoder.layers:
            x = layer(x, self.causal)
        return self.final_layer_norm(x)


class TextEncoder(nn.Module):
    """CLIPTextModel's structure, tiny: input_ids → last_hidden_state."""

    def __init__(self, vocab=514, d=32, heads=2, layers=1):
        super().__init__()
        self.text_model = TextModel(vocab, d, heads, layers)

    def forward(self, input_ids):
        return self.text_model(input_ids)


def count(m):
    return sum(p.numel() for p in m.parameters())


# ---- noise schedule (SD 1.x: scaled_linear, 1000 steps) ----

def alphas_cumprod():
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, dim=0)


ACP = alphas_cumprod()


def add_noise(z0, eps, t):
    a = ACP[t].float()[:, None, None, None]
    return a.sqrt() * z0 + (1 - a).sqrt() * eps


# ---- data ----

def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def build_diffsim(repo, work):
    exe = os.path.join(work, "diffsim")
    subprocess.run(["go", "build", "-o", exe, "."], cwd=repo, check=True)
    return exe


def synth(exe, work, seeds):
    """Draws one styles x contents set per seed with diffsim's own generator, two at a time."""
    dirs, procs = [], []
    for s in seeds:
        d = os.path.join(work, "data", f"seed-{s}")
        dirs.append(d)
        if os.path.exists(os.path.join(d, ".done")):
            continue
        cmd = [exe, "bench", "synth", d, "--styles", str(STYLES), "--contents", str(CONTENTS),
               "--size", str(SIZE), "--seed", str(s), "--quiet"]
        procs.append((subprocess.Popen(cmd), d))
        if len(procs) >= 2:
            p, pd = procs.pop(0)
            if p.wait() != 0:
                sys.exit(f"diffsim bench synth failed for {pd}")
            open(os.path.join(pd, ".done"), "w").close()
    for p, pd in procs:
        if p.wait() != 0:
            sys.exit(f"diffsim bench synth failed for {pd}")
        open(os.path.join(pd, ".done"), "w").close()
    return dirs


def load_sets(dirs):
    """Images as uint8 [N, 3, H, W], with their style and content names."""
    imgs, styles, contents = [], [], []
    for d in dirs:
        for style in sorted(os.listdir(d)):
            sd = os.path.join(d, style)
            if not os.path.isdir(sd):
                continue
            for f in sorted(os.listdir(sd)):
                im = np.asarray(Image.open(os.path.join(sd, f)).convert("RGB"))
                imgs.append(torch.from_numpy(im.copy()).permute(2, 0, 1))
                styles.append(style)
                contents.append(f[:-4])
    return torch.stack(imgs), styles, contents


def to_float(u8):
    return u8.float() / 127.5 - 1


def to_u8(x):
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


# ---- training ----

def cosine_lr(step, steps, base, warmup=50, floor=0.1):
    if step < warmup:
        return base * (step + 1) / warmup
    p = (step - warmup) / max(1, steps - warmup)
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))


def train_vae(vae, train, steps, batch, gen):
    opt = torch.optim.AdamW(vae.parameters(), lr=2e-3, weight_decay=0.0)
    curve = []
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, steps, 2e-3)
        idx = torch.randint(0, len(train), (batch,), generator=gen)
        x = to_float(train[idx])
        m = vae.moments(x)
        mean, logvar = m[:, :4], m[:, 4:].clamp(-30, 20)
        z = mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=gen)
        rec = vae.decode(z)
        mse = F.mse_loss(rec, x)
        kl = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).mean()
        loss = mse + 1e-4 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        curve.append((step, mse.item()))
        if step % 100 == 0 or step == steps - 1:
            log(f"vae step {step}/{steps}: reconstruction mse {mse.item():.4f}, kl {kl.item():.3f}")
    return curve


@torch.no_grad()
def latent_means(vae, imgs, batch=64):
    out = []
    for i in range(0, len(imgs), batch):
        out.append(vae.moments(to_float(imgs[i:i + batch]))[:, :4])
    return torch.cat(out)


def empty_prompt_ids():
    return torch.tensor([[512] + [513] * 76], dtype=torch.int64)


def ema_update(ema, model, decay):
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.mul_(decay).add_(p, alpha=1 - decay)


@torch.no_grad()
def denoise_loss(unet, text, z0, eps, t):
    ctx = text(empty_prompt_ids())
    losses = []
    for i in range(0, len(z0), 64):
        zt = add_noise(z0[i:i + 64], eps[i:i + 64], t[i:i + 64])
        pred = unet(zt, t[i:i + 64].float(), ctx.expand(len(zt), -1, -1))
        losses.append(((pred - eps[i:i + 64]) ** 2).mean(dim=(1, 2, 3)))
    return torch.cat(losses).mean().item()


def eval_fixture(z0, t_values, seed):
    """Fixed noise and timesteps for a held-back loss: every latent at every t of t_values."""
    g = torch.Generator().manual_seed(seed)
    n = len(z0)
    z = z0.repeat(len(t_values), 1, 1, 1)
    t = torch.tensor(t_values, dtype=torch.int64).repeat_interleave(n)
    eps = torch.randn(z.shape, generator=g)
    return z, eps, t


def train_unet(unet, text, ema_unet, ema_text, train_z, held, steps, batch, gen, every=250):
    params = list(unet.parameters()) + list(text.parameters())
    opt = torch.optim.AdamW(params, lr=1.5e-3, weight_decay=0.0)
    ids = empty_prompt_ids()
    curve, held_curve = [], []
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, steps, 1.5e-3, warmup=100)
        idx = torch.randint(0, len(train_z), (batch,), generator=gen)
        z0 = train_z[idx]
        t = torch.randint(0, 1000, (batch,), generator=gen)
        eps = torch.randn(z0.shape, generator=gen)
        ctx = text(ids).expand(batch, -1, -1)
        pred = unet(add_noise(z0, eps, t), t.float(), ctx)
        loss = F.mse_loss(pred, eps)
        if not torch.isfinite(loss):
            sys.exit(f"unet step {step}: the loss is {loss.item()}; training diverged")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(0.995, (1 + step) / (10 + step))
        ema_update(ema_unet, unet, decay)
        ema_update(ema_text, text, decay)
        curve.append((step, loss.item()))
        if step % every == 0 or step == steps - 1:
            h = denoise_loss(ema_unet, ema_text, *held)
            held_curve.append((step, h))
            log(f"unet step {step}/{steps}: loss {loss.item():.4f}, held-back loss (EMA) {h:.4f}")
    return curve, held_curve


# ---- sampling: DDPM ancestral steps on a 100-step respacing of the 1000-step schedule ----

@torch.no_grad()
def sample(unet, text, vae, scaling, n, steps, seed, latent=16):
    g = torch.Generator().manual_seed(seed)
    ts = torch.linspace(999, 0, steps).round().long()
    x = torch.randn((n, 4, latent, latent), generator=g)
    ctx = text(empty_prompt_ids()).expand(n, -1, -1)
    for i, t in enumerate(ts):
        a_t = ACP[t].float()
        a_prev = ACP[ts[i + 1]].float() if i + 1 < len(ts) else torch.tensor(1.0)
        beta = 1 - a_t / a_prev
        eps = unet(x, torch.full((n,), float(t)), ctx)
        mean = (x - beta / (1 - a_t).sqrt() * eps) / (1 - beta).sqrt()
        if i + 1 < len(ts):
            var = beta * (1 - a_prev) / (1 - a_t)
            x = mean + var.sqrt() * torch.randn(x.shape, generator=g)
        else:
            x = mean
    return vae.decode(x / scaling)


def grid_png(imgs_u8, cols, path, pad=2):
    n, _, h, w = imgs_u8.shape
    rows = (n + cols - 1) // cols
    canvas = Image.new("RGB", (cols * (w + pad) + pad, rows * (h + pad) + pad), (255, 255, 255))
    for i in range(n):
        im = Image.fromarray(imgs_u8[i].permute(1, 2, 0).numpy())
        canvas.paste(im, (pad + (i % cols) * (w + pad), pad + (i // cols) * (h + pad)))
    # A 256-colour palette keeps the figures a third of their size in the repository.
    canvas.quantize(256).save(path, optimize=True)


def smooth(values, k):
    out, acc = [], []
    for v in values:
        acc.append(v)
        if len(acc) > k:
            acc.pop(0)
        out.append(sum(acc) / len(acc))
    return out


def nice(x):
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least x."""
    p = 10 ** math.floor(math.log10(x))
    return next(m * p for m in (1, 2, 2.5, 5, 10) if m * p >= x)


def plot_curves(path, panels):
    """Line charts with PIL: panels are (title, [(label, colour, [(x, y)])], y_max)."""
    W, H, M = 560, 300, 48
    img = Image.new("RGB", (W * len(panels), H), (255, 255, 255))
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    for p, (title, series, ymax) in enumerate(panels):
        x0 = p * W + M
        x1, y0, y1 = (p + 1) * W - 16, 28, H - 32
        xmax = max(x for _, _, pts in series for x, _ in pts) or 1
        ystep, xstep = nice(ymax / 5), nice(xmax / 5)
        ymax = ystep * math.ceil(ymax / ystep)
        d.text((x0, 8), title, fill=(0, 0, 0), font=font)
        d.line([(x0, y0), (x0, y1), (x1, y1)], fill=(0, 0, 0))
        for k in range(round(ymax / ystep) + 1):
            y = y1 - (y1 - y0) * k * ystep / ymax
            d.line([(x0 - 4, y), (x0, y)], fill=(0, 0, 0))
            d.text((x0 - 40, y - 6), f"{k * ystep:g}", fill=(0, 0, 0), font=font)
        for k in range(int(xmax // xstep) + 1):
            x = x0 + (x1 - x0) * k * xstep / xmax
            d.line([(x, y1), (x, y1 + 4)], fill=(0, 0, 0))
            d.text((x - 8, y1 + 8), f"{k * xstep:g}", fill=(0, 0, 0), font=font)
        d.text((x1 - 30, y1 + 18), "step", fill=(0, 0, 0), font=font)
        for li, (label, colour, pts) in enumerate(series):
            xy = [(x0 + (x1 - x0) * x / xmax, y1 - (y1 - y0) * min(y, ymax) / ymax) for x, y in pts]
            if len(xy) > 1:
                d.line(xy, fill=colour, width=2)
            for q in xy if len(xy) < 40 else []:
                d.ellipse([q[0] - 3, q[1] - 3, q[0] + 3, q[1] + 3], fill=colour)
            d.text((x1 - 290, y0 + 4 + 14 * li), label, fill=colour, font=font)
    img.save(path, optimize=True)


# ---- export ----

def to_fp16_weights(path):
    """Stores the weights of convolutions, matrix products and embeddings as float16, read
    through a Cast to float32: half the bytes, with float32 arithmetic, inputs and outputs.
    Other constants (norms, biases of linear layers, the timestep embedding's frequencies, whose
    float16 rounding would shift the phase at t = 999 by radians) stay float32."""
    import onnx
    from onnx import helper, numpy_helper, TensorProto
    m = onnx.load(path)
    g = m.graph
    weight_slots = {"Conv": (1, 2), "MatMul": (1,), "Gemm": (1, 2), "Gather": (0,)}
    uses = {}
    for n in g.node:
        for i, x in enumerate(n.input):
            uses.setdefault(x, []).append(i in weight_slots.get(n.op_type, ()))
    casts = []
    for init in g.initializer:
        if init.data_type != TensorProto.FLOAT or not uses.get(init.name) or not all(uses[init.name]):
            continue
        name = init.name
        a = numpy_helper.to_array(init)
        init.CopyFrom(numpy_helper.from_array(a.astype(np.float16), name + "_fp16"))
        casts.append(helper.make_node("Cast", [name + "_fp16"], [name], to=TensorProto.FLOAT, name=name + "_cast"))
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)
    onnx.checker.check_model(m)
    onnx.save(m, path)


def export_onnx(model, args, path, inputs, outputs, dynamic):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    model.eval()
    torch.onnx.export(model, args, path, input_names=inputs, output_names=outputs,
                      dynamic_axes=dynamic, opset_version=17, do_constant_folding=True)
    to_fp16_weights(path)


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


# The batch is free; the image size is not: the model was trained at SIZE px only, and a fixed
# 16x16 sample input tells diffsim to run it there (and to say so when asked for another size).
UNET_AXES = {"sample": {0: "batch"}, "timestep": {0: "batch"}, "encoder_hidden_states": {0: "batch"}, "out_sample": {0: "batch"}}


def export_folder(out, unet, vae, text, scaling, cfg):
    if os.path.exists(out):
        shutil.rmtree(out)
    b = 2
    export_onnx(unet, (torch.randn(b, 4, 16, 16), torch.tensor([500.0, 10.0]), torch.randn(b, 77, cfg["text_width"])),
                os.path.join(out, "unet", "model.onnx"), ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
                UNET_AXES)
    export_onnx(VAEEncoderExport(vae), (torch.randn(1, 3, SIZE, SIZE),), os.path.join(out, "vae_encoder", "model.onnx"),
                ["sample"], ["latent_parameters"], {"sample": {0: "batch"}, "latent_parameters": {0: "batch"}})
    export_onnx(text, (empty_prompt_ids(),), os.path.join(out, "text_encoder", "model.onnx"), ["input_ids"], ["last_hidden_state"],
                {"input_ids": {0: "batch"}, "last_hidden_state": {0: "batch"}})
    chars = bytes_to_unicode()
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": 256 + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = 512
    vocab["<|endoftext|>"] = 513
    write_json(os.path.join(out, "tokenizer", "vocab.json"), vocab)
    with open(os.path.join(out, "tokenizer", "merges.txt"), "w") as f:
        f.write("#version: 0.2 (no merges: a byte-level vocabulary)\n")
    write_json(os.path.join(out, "tokenizer", "tokenizer_config.json"),
               {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>", "model_max_length": 77, "tokenizer_class": "CLIPTokenizer"})
    write_json(os.path.join(out, "model_index.json"), {
        "_class_name": "OnnxStableDiffusionPipeline", "_diffusers_version": "0.27.0",
        "_comment": "diffsim's miniature SD (docs/toy-sd.md), made by scripts/train-toy-sd.py",
        "unet": ["diffusers", "OnnxRuntimeModel"], "vae_encoder": ["diffusers", "OnnxRuntimeModel"],
        "text_encoder": ["diffusers", "OnnxRuntimeModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "scheduler": ["diffusers", "DDPMScheduler"], "vae_decoder": [None, None], "safety_checker": [None, None],
        "feature_extractor": [None, None], "requires_safety_checker": False})
    write_json(os.path.join(out, "unet", "config.json"), {
        "_class_name": "UNet2DConditionModel", "sample_size": SIZE // 8, "in_channels": 4, "out_channels": 4,
        "block_out_channels": list(cfg["unet_channels"]), "layers_per_block": 2, "attention_head_dim": cfg["heads"],
        "cross_attention_dim": cfg["text_width"],
        "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"], "mid_block_type": "UNetMidBlock2DCrossAttn",
        "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
        "_comment": "GroupNorm in groups of 8 channels (4 groups at 32 channels, 6 at 48), not a fixed count"})
    write_json(os.path.join(out, "vae_encoder", "config.json"), {
        "_class_name": "AutoencoderKL", "sample_size": SIZE, "in_channels": 3, "latent_channels": 4,
        "block_out_channels": list(cfg["vae_channels"]), "layers_per_block": 1,
        "_comment": "GroupNorm in groups of 8 channels, not a fixed count",
        "scaling_factor": round(scaling, 5)})
    write_json(os.path.join(out, "text_encoder", "config.json"), {
        "architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "vocab_size": 514,
        "hidden_size": cfg["text_width"], "intermediate_size": 4 * cfg["text_width"], "num_attention_heads": 2,
        "num_hidden_layers": 1, "max_position_embeddings": 77, "hidden_act": "quick_gelu",
        "bos_token_id": 512, "eos_token_id": 513, "pad_token_id": 513})
    write_json(os.path.join(out, "scheduler", "scheduler_config.json"), {
        "_class_name": "DDPMScheduler", "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
        "num_train_timesteps": 1000, "prediction_type": "epsilon", "clip_sample": False})


def pack(src, dst):
    """Copies an exported folder into the repository: graphs gzip-compressed (their float16
    weights and long node names shrink by a third), the rest as is, and a MANIFEST with the
    sha256 and size of every file as diffsim will unpack it, which is also its cache key."""
    if os.path.exists(dst):
        shutil.rmtree(dst)
    lines = []
    for root, _, names in os.walk(src):
        for n in sorted(names):
            p = os.path.join(root, n)
            rel = os.path.relpath(p, src).replace(os.sep, "/")
            data = open(p, "rb").read()
            lines.append(f"{hashlib.sha256(data).hexdigest()}  {len(data)}  {rel}\n")
            out = os.path.join(dst, rel)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            if rel.endswith(".onnx"):
                with open(out + ".gz", "wb") as f:
                    f.write(gzip.compress(data, compresslevel=9, mtime=0))
            else:
                with open(out, "wb") as f:
                    f.write(data)
    with open(os.path.join(dst, "MANIFEST"), "w") as f:
        f.writelines(sorted(lines, key=lambda l: l.split("  ")[2]))
    return folder_bytes(dst)


def folder_bytes(folder):
    return sum(os.path.getsize(os.path.join(r, n)) for r, _, ns in os.walk(folder) for n in ns)


# ---- the run ----

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    help="the diffsim repository (default: the one holding this script)")
    ap.add_argument("--work", default="/tmp/toy-sd-work", help="training images and intermediate files")
    ap.add_argument("--train-seeds", type=int, default=64, help="styles x contents sets to train on (seeds 1000 up)")
    ap.add_argument("--vae-steps", type=int, default=500)
    ap.add_argument("--vae-batch", type=int, default=16)
    ap.add_argument("--unet-steps", type=int, default=1000)
    ap.add_argument("--unet-batch", type=int, default=24)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy machine)")
    ap.add_argument("--smoke", action="store_true", help="a few steps of everything, written under --work only")
    ap.add_argument("--from-checkpoint", action="store_true",
                    help="skip training: evaluate and export the networks the last run saved in --work")
    a = ap.parse_args()
    if a.smoke:
        a.train_seeds, a.vae_steps, a.unet_steps = 2, 3, 3
    torch.set_num_threads(a.threads)
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    os.makedirs(a.work, exist_ok=True)
    model_dir = os.path.join(a.work, "export", "model")
    untrained_dir = os.path.join(a.work, "export", "untrained")
    if a.smoke:
        packed_model = os.path.join(a.work, "packed", "model")
        packed_untrained = os.path.join(a.work, "packed", "untrained")
        card_dir = os.path.join(a.work, "card")
        card_md = os.path.join(a.work, "toy-sd.md")
    else:
        packed_model = os.path.join(a.repo, "features", "toysd", "model")
        packed_untrained = os.path.join(a.repo, "features", "toysd", "untrained")
        card_dir = os.path.join(a.repo, "docs", "toy-sd")
        card_md = os.path.join(a.repo, "docs", "toy-sd.md")
    os.makedirs(card_dir, exist_ok=True)
    cfg = {"unet_channels": (32, 48, 48, 48), "heads": 2, "text_width": 32, "ff_mult": 2, "vae_channels": (8, 16, 32, 64)}
    times = {}
    start = t0 = time.time()

    exe = build_diffsim(a.repo, a.work)
    train_seeds = list(range(TRAIN_SEED0, TRAIN_SEED0 + a.train_seeds))
    train_u8, _, _ = load_sets(synth(exe, a.work, train_seeds))
    eval_seeds = EVAL_SEEDS[:1] if a.smoke else EVAL_SEEDS
    held_u8, _, _ = load_sets(synth(exe, a.work, eval_seeds))
    times["data"] = time.time() - t0
    log(f"data: {len(train_u8)} training images (seeds {train_seeds[0]}-{train_seeds[-1]}), "
        f"{len(held_u8)} held back (seeds {eval_seeds[0]}-{eval_seeds[-1]}), {times['data']:.0f}s")

    t0 = time.time()
    ckpt = os.path.join(a.work, "smoke.pt" if a.smoke else "checkpoint.pt")
    torch.manual_seed(SEED + 1)
    vae = VAE(cfg["vae_channels"])
    unet = UNet(cfg["unet_channels"], heads=cfg["heads"], cross_dim=cfg["text_width"], ff_mult=cfg["ff_mult"])
    text = TextEncoder(d=cfg["text_width"])
    untrained_unet, untrained_text = copy.deepcopy(unet).eval(), copy.deepcopy(text).eval()
    ema_unet, ema_text = copy.deepcopy(unet), copy.deepcopy(text)
    if a.from_checkpoint:
        c = torch.load(ckpt)
        for m, k in ((vae, "vae"), (unet, "unet"), (text, "text"), (ema_unet, "ema_unet"), (ema_text, "ema_text"),
                     (untrained_unet, "untrained_unet"), (untrained_text, "untrained_text")):
            m.load_state_dict(c[k])
        vae_curve, unet_curve, held_curve = c["vae_curve"], c["unet_curve"], c["held_curve"]
        times.update({k: c["times"][k] for k in ("vae", "unet")})
        vae.eval()
        log(f"networks from {ckpt} (trained {datetime.datetime.fromtimestamp(os.path.getmtime(ckpt)):%Y-%m-%d %H:%M})")
    else:
        # The VAE is kept apart as well, so a U-Net run can start again without it (with the
        # random state the VAE's training left, so the result is the same).
        vae_ckpt = os.path.join(a.work, "smoke-vae.pt" if a.smoke else "vae.pt")
        settings = {"steps": a.vae_steps, "batch": a.vae_batch, "channels": cfg["vae_channels"], "seeds": a.train_seeds}
        c = torch.load(vae_ckpt) if os.path.exists(vae_ckpt) else None
        if c is not None and c["settings"] == settings:
            vae.load_state_dict(c["vae"])
            gen.set_state(c["gen"])
            vae_curve, times["vae"] = c["vae_curve"], c["seconds"]
            log(f"VAE from {vae_ckpt} (trained in {c['seconds']:.0f}s)")
        else:
            vae_curve = train_vae(vae, train_u8, a.vae_steps, a.vae_batch, gen)
            times["vae"] = time.time() - t0
            torch.save({"vae": vae.state_dict(), "gen": gen.get_state(), "vae_curve": vae_curve,
                        "seconds": times["vae"], "settings": settings}, vae_ckpt)
        vae.eval()
    with torch.no_grad():
        x = to_float(held_u8[:64])
        rec = vae.decode(vae.moments(x)[:, :4])
        vae_held_mse = F.mse_loss(rec, x).item()
    grid_png(torch.cat([held_u8[:16:2], to_u8(rec[:16:2])]), 8, os.path.join(card_dir, "reconstructions.png"))
    train_z = latent_means(vae, train_u8)
    held_z = latent_means(vae, held_u8)
    scaling = 1 / train_z.std().item()
    train_z, held_z = train_z * scaling, held_z * scaling
    log(f"vae: held-back reconstruction mse {vae_held_mse:.4f}; latent scaling factor {scaling:.5f}; {times['vae']:.0f}s")

    if not a.from_checkpoint:
        t0 = time.time()
        held_small = eval_fixture(held_z[:64], (50, 250, 500, 750), SEED + 2)
        unet_curve, held_curve = train_unet(unet, text, ema_unet, ema_text, train_z, held_small,
                                            a.unet_steps, a.unet_batch, gen)
        times["unet"] = time.time() - t0
        torch.save({"vae": vae.state_dict(), "unet": unet.state_dict(), "text": text.state_dict(),
                    "ema_unet": ema_unet.state_dict(), "ema_text": ema_text.state_dict(),
                    "untrained_unet": untrained_unet.state_dict(), "untrained_text": untrained_text.state_dict(),
                    "vae_curve": vae_curve, "unet_curve": unet_curve, "held_curve": held_curve,
                    "times": dict(times)}, ckpt)
    ema_unet.eval()
    ema_text.eval()

    # Held-back denoising loss per t: the trained U-Net (EMA), the same network before
    # training, and two baselines that need no training: predicting zero noise (loss =
    # E[eps^2] = 1), and the best linear guess if latents were Gaussian with the data's
    # variance (eps_hat = sqrt(1-a) z_t / (a var + 1 - a); loss = a var / (a var + 1 - a)).
    t0 = time.time()
    var = train_z.var().item()
    losses = {"t": list(EVAL_T), "trained": [], "untrained": [], "zero": [], "gaussian": [], "trained_on_training_images": []}
    for t in EVAL_T:
        z, eps, tt = eval_fixture(held_z, (t,), SEED + 3)
        losses["trained"].append(denoise_loss(ema_unet, ema_text, z, eps, tt))
        losses["untrained"].append(denoise_loss(untrained_unet, untrained_text, z, eps, tt))
        losses["zero"].append((eps ** 2).mean().item())
        a_t = ACP[t].item()
        guess = math.sqrt(1 - a_t) / (a_t * var + 1 - a_t) * add_noise(z, eps, tt)
        losses["gaussian"].append(((guess - eps) ** 2).mean().item())
        z2, eps2, tt2 = eval_fixture(train_z[:len(held_z)], (t,), SEED + 3)
        losses["trained_on_training_images"].append(denoise_loss(ema_unet, ema_text, z2, eps2, tt2))
    for k in ("trained", "untrained", "zero", "gaussian", "trained_on_training_images"):
        losses["mean_" + k] = sum(losses[k]) / len(EVAL_T)
    log("held-back loss per t: " + json.dumps({k: [round(v, 4) for v in losses[k]] for k in ("trained", "untrained", "zero", "gaussian")}))

    n, sample_steps = (8, 5) if a.smoke else (32, 100)
    samples = sample(ema_unet, ema_text, vae, scaling, n, sample_steps, SEED + 4)
    grid_png(to_u8(samples), 8, os.path.join(card_dir, "samples.png"))
    untrained_samples = sample(untrained_unet, untrained_text, vae, scaling, 8, sample_steps, SEED + 4)
    grid_png(to_u8(untrained_samples), 8, os.path.join(card_dir, "samples-untrained.png"))
    pick = torch.randperm(len(train_u8), generator=torch.Generator().manual_seed(SEED + 5))[:n]
    grid_png(train_u8[pick], 8, os.path.join(card_dir, "training-images.png"))
    times["evaluate"] = time.time() - t0

    t0 = time.time()
    export_folder(model_dir, ema_unet, vae, ema_text, scaling, cfg)
    untrained_unet_path = os.path.join(untrained_dir, "unet", "model.onnx")
    if os.path.exists(untrained_dir):
        shutil.rmtree(untrained_dir)
    export_onnx(untrained_unet, (torch.randn(2, 4, 16, 16), torch.tensor([500.0, 10.0]), torch.randn(2, 77, cfg["text_width"])),
                untrained_unet_path, ["sample", "timestep", "encoder_hidden_states"], ["out_sample"], UNET_AXES)
    export_onnx(untrained_text, (empty_prompt_ids(),), os.path.join(untrained_dir, "text_encoder", "model.onnx"),
                ["input_ids"], ["last_hidden_state"], {"input_ids": {0: "batch"}, "last_hidden_state": {0: "batch"}})
    model_bytes = folder_bytes(model_dir)
    untrained_bytes = folder_bytes(untrained_dir)
    packed_bytes = pack(model_dir, packed_model) + pack(untrained_dir, packed_untrained)
    times["export"] = time.time() - t0
    times["total"] = sum(times[k] for k in ("data", "vae", "unet", "evaluate", "export"))

    vae_pts = [(s, v) for s, v in zip([s for s, _ in vae_curve], smooth([v for _, v in vae_curve], 25))]
    unet_pts = [(s, v) for s, v in zip([s for s, _ in unet_curve], smooth([v for _, v in unet_curve], 50))]
    plot_curves(os.path.join(card_dir, "loss.png"), [
        ("VAE: reconstruction MSE", [("training batches, smoothed", (40, 90, 200), vae_pts[::5])], max(v for _, v in vae_pts)),
        ("U-Net: denoising loss (epsilon MSE)", [
            ("training batches (t uniform), smoothed", (40, 90, 200), unet_pts[::5]),
            ("held-back images at t = 50, 250, 500, 750", (220, 80, 40), held_curve)], 1.2),
    ])

    report = {
        "seed": SEED, "train_seeds": [train_seeds[0], train_seeds[-1]], "eval_seeds": list(eval_seeds),
        "train_images": len(train_u8), "held_back_images": len(held_u8), "size": SIZE,
        "vae_steps": a.vae_steps, "vae_batch": a.vae_batch, "unet_steps": a.unet_steps, "unet_batch": a.unet_batch,
        "config": cfg, "params": {"unet": count(unet), "vae": count(vae), "vae_encoder": count(VAEEncoderExport(vae)), "text_encoder": count(text)},
        "scaling_factor": scaling, "latent_variance": var, "vae_held_back_mse": vae_held_mse,
        "losses": losses, "held_back_curve": held_curve, "wall_seconds": {k: round(v) for k, v in times.items()},
        "model_bytes": model_bytes, "untrained_bytes": untrained_bytes, "committed_bytes": packed_bytes,
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {a.threads} thread(s), load average at the end {os.getloadavg()[0]:.1f}",
        "date": datetime.date.today().isoformat(),
    }
    write_json(os.path.join(card_dir, "report.json"), report)
    write_card(card_md, report)
    log(f"done in {times['total'] / 60:.1f} min: model {model_bytes / 1e6:.2f} MB, untrained U-Net and text "
        f"encoder {untrained_bytes / 1e6:.2f} MB, {packed_bytes / 1e6:.2f} MB committed at {packed_model} and "
        f"{packed_untrained}; card {card_md}")


def write_card(path, r):
    L = r["losses"]
    rows = "\n".join(
        f"| {t} | {tr:.4f} | {un:.4f} | {z:.4f} | {g:.4f} | {tt:.4f} |"
        for t, tr, un, z, g, tt in zip(L["t"], L["trained"], L["untrained"], L["zero"], L["gaussian"], L["trained_on_training_images"]))
    w = r["wall_seconds"]
    p = r["params"]
    text = f"""# toy-sd: a miniature Stable Diffusion trained on styles × contents

`--model toy-sd` is a latent diffusion model in Stable Diffusion 1.x's structure, small enough to
train on one CPU core in half an hour and to ship inside diffsim ({r['model_bytes'] / 1e6:.1f} MB unpacked, float16
weights; {r['committed_bytes'] / 1e6:.1f} MB committed together with the untrained network, graphs gzip-compressed). It exists so that the method can be seen at work on a network that has learned
images: which layers and timesteps follow style, which follow content. It knows nothing but
this dataset; it is not a stand-in for SD 1.5 on photographs.

Made by `scripts/train-toy-sd.py` on {r['date']} ({r['machine']}).

## Data

`diffsim bench synth` (session/bench/synth): {STYLES} styles (a texture in a palette) × {CONTENTS}
contents (a shape) at {r['size']} px, one set per seed. Trained on seeds {r['train_seeds'][0]}–{r['train_seeds'][1]}
({r['train_images']} images); held back: seeds {', '.join(map(str, r['eval_seeds']))} ({r['held_back_images']} images; seed 1 is
the set `diffsim bench synth DIR` writes by default). Another seed moves the shape and the
texture's phase, angle and frequency; the classes stay.

![a random sample of training images](toy-sd/training-images.png)

## Networks

| part | structure | parameters |
|---|---|---|
| VAE | AutoencoderKL's: channels {list(r['config']['vae_channels'])}, one resnet per level, mid-block attention; {r['size']} px → 16×16×4 latents (factor 8, as SD 1.x); scaling factor {r['scaling_factor']:.5f} measured on the training latents | {p['vae']:,} ({p['vae_encoder']:,} in the exported encoder) |
| U-Net | UNet2DConditionModel's: channels {list(r['config']['unet_channels'])}, CrossAttnDown ×3 + Down, cross-attention mid block, Up + CrossAttnUp ×3, 2 layers per block, {r['config']['heads']} heads, GEGLU feed-forward ×{r['config']['ff_mult']}: 16 self- and 16 cross-attention layers at 16×16, 8×8, 4×4 and 2×2 tokens, named as diffusers names them (Down0 … Up2 as in the paper) | {p['unet']:,} |
| text encoder | CLIPTextModel's: 1 layer, width {r['config']['text_width']}, 77 tokens, a byte-level vocabulary of 514 (no merges) | {p['text_encoder']:,} |

## Training

Fixed seed {r['seed']}. VAE: {r['vae_steps']} steps of {r['vae_batch']} images, AdamW, cosine learning rate from 2e-3,
reconstruction MSE + 1e-4 × KL. U-Net and text encoder: {r['unet_steps']} steps of {r['unet_batch']} latents (the VAE
means × the scaling factor), DDPM ε-prediction with SD's scaled-linear schedule (β from 0.00085 to
0.012, 1000 steps, t uniform), unconditional (the empty prompt), AdamW with a cosine learning
rate from 1.5e-3 (100 warm-up steps), gradient clipping at 1, EMA of the weights (decay 0.995): the EMA weights are
exported. Wall time: {w['total'] / 60:.1f} min in all (data {w['data']} s, VAE {w['vae']} s, U-Net {w['unet']} s,
evaluation and samples {w['evaluate']} s, export {w['export']} s).

![loss curves](toy-sd/loss.png)

## It learned

Denoising loss (mean squared error of the predicted noise) on the {r['held_back_images']} held-back images, one
fixed noise draw per image and t; the VAE's held-back reconstruction MSE is {r['vae_held_back_mse']:.4f} (images in [−1, 1]).
"untrained" is the same network (U-Net and text encoder) before its first step; "zero" predicts
no noise (loss E[ε²]); "Gaussian" is the best linear guess if the latents were Gaussian noise
of the data's variance, a baseline that knows the schedule but no images.

| t | trained | untrained | zero | Gaussian | trained, on training images |
|---|---|---|---|---|---|
{rows}
| mean | {L['mean_trained']:.4f} | {L['mean_untrained']:.4f} | {L['mean_zero']:.4f} | {L['mean_gaussian']:.4f} | {L['mean_trained_on_training_images']:.4f} |

Samples: 100 DDPM ancestral steps (a respacing of the 1000-step schedule) from pure noise,
decoded by the VAE; nothing but the network decides what they show.

![samples of the trained model](toy-sd/samples.png)

The same loop with the untrained network:

![samples of the untrained network](toy-sd/samples-untrained.png)

VAE reconstructions of held-back images (top: the images, bottom: decoded from their latent means):

![VAE reconstructions](toy-sd/reconstructions.png)

{CARD_MARKER}
"""
    kept = ""
    if os.path.exists(path):
        old = open(path).read()
        if CARD_MARKER in old:
            kept = old.split(CARD_MARKER, 1)[1].lstrip("\n")
    with open(path, "w") as f:
        f.write(text + ("\n" + kept if kept else ""))


if __name__ == "__main__":
    main()
