"""AnomalyCLIP: object-agnostic prompts on CLIP ViT-L/14@336 for zero-shot anomaly detection.

"AnomalyCLIP: Object-agnostic Prompt Learning for Zero-shot Anomaly Detection" (Zhou et al., ICLR 2024,
arXiv 2310.18961); official code https://github.com/zqhang/AnomalyCLIP (MIT), read at 45ed4dd. Written
for zoo from what the official test path does (``test.py``, ``AnomalyCLIP_lib/AnomalyCLIP.py``,
``prompt_ensemble.py``), with the test settings of ``test.sh``:

- image: 518 x 518; CLIP's 24 x 24 positional table is resized bilinearly to 37 x 37;
- DPAM (``DAPM_replace(DPAM_layer=20)``): the last 19 visual blocks also compute V-V attention. A second
  token stream starts from the output of block 5, adds each later block's V-V attention output (no
  MLP) and takes that attention's input from the original stream. The image score uses the
  original stream's class token, ``@ proj`` without ``ln_post`` (as the official code has it); the
  pixel maps use the V-V stream at the layers of ``features_list`` (1-based block indices;
  ``test.sh`` passes ``24``, the last block), each through ``ln_post`` and ``proj``;
- text: the prompts ``[X]*12 object.`` and ``[X]*12 damaged object.``, whose twelve ``X`` embeddings are the
  learned ``ctx_pos``/``ctx_neg``; in text blocks 1..8 (``depth`` 9) tokens 1..4 are replaced by the
  learned ``compound_prompts_text`` cast to float16 and back (``.half()`` in the official block);
- score = softmax(cos(image, [normal, abnormal]) / 0.07)[abnormal]; map per layer = softmax over the
  two prompts of each patch's cosine / 0.07, upsampled bilinearly to the image size, then
  (p_abnormal + 1 - p_normal) / 2; maps of several layers are summed. The official test does not
  mix the map into the image score; nor does this model. Smoothing (Gaussian, sigma 4) is the
  anomaly-detection task's job (card ``map_smoothing``).

The state dict is CLIP's (OpenAI names) plus ``prompt_learner.*`` with the official prompt learner's
names, buffers included: the official prompt checkpoint loads into ``prompt_learner`` as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from zoo_anomalyclip.clip import CLIP

__all__ = ["AnomalyCLIP", "PromptLearner", "anomalyclip_vit_l_14_336", "clip_vit_l_14_336", "prompt_tokens"]

# CLIP BPE ids (AnomalyCLIP_lib/simple_tokenizer.py with bpe_simple_vocab_16e6): start and end of text,
# "x</w>" (the tokenizer lower-cases "X"), "object</w>", ".</w>", "damaged</w>"
SOT, EOT, X_TOKEN, OBJECT, PERIOD, DAMAGED = 49406, 49407, 343, 14115, 269, 13568
PROJECTION_WIDTH = 896  # compound_prompt_projections: nn.Linear(ctx_dim, 896) in the official learner (unused)
TEMPERATURE = 0.07  # the official code divides cosines by 0.07 (not by the learned logit_scale)

VIT_L_14_336 = dict(embed_dim=768, image_size=336, patch_size=14, vision_width=1024, vision_layers=24,
                    context_length=77, vocab_size=49408, text_width=768, text_layers=12)


def prompt_tokens(n_ctx: int, context_length: int = 77) -> torch.Tensor:
    """Token ids ``(2, context_length)`` of ``"X"*n_ctx + " object."`` and ``... damaged object.``, zero-padded."""
    rows = []
    for words in ((OBJECT, PERIOD), (DAMAGED, OBJECT, PERIOD)):
        ids = [SOT, *[X_TOKEN] * n_ctx, *words, EOT]
        if len(ids) > context_length:
            raise ValueError(f"n_ctx {n_ctx} does not fit a {context_length}-token context")
        rows.append(ids + [0] * (context_length - len(ids)))
    return torch.tensor(rows, dtype=torch.int32)


class PromptLearner(nn.Module):
    """The learned prompt parts, named as ``AnomalyCLIP_PromptLearner`` names them.

    ``token_prefix_*``/``token_suffix_*`` hold the frozen token embeddings around the twelve learned
    context vectors (computed from CLIP's token embedding when the official learner is built, and
    saved in its checkpoint); ``tokenized_prompts_*`` the ids, whose arg-max marks the end token.
    """

    def __init__(self, width: int, *, n_ctx: int = 12, depth: int = 9, t_n_ctx: int = 4,
                 context_length: int = 77) -> None:
        super().__init__()
        self.n_ctx, self.t_n_ctx = n_ctx, t_n_ctx
        self.compound_prompts_text = nn.ParameterList(
            [nn.Parameter(0.02 * torch.randn(t_n_ctx, width)) for _ in range(depth - 1)])
        self.compound_prompt_projections = nn.ModuleList(
            [nn.Linear(width, PROJECTION_WIDTH) for _ in range(depth - 1)])
        self.ctx_pos = nn.Parameter(0.02 * torch.randn(1, 1, n_ctx, width))
        self.ctx_neg = nn.Parameter(0.02 * torch.randn(1, 1, n_ctx, width))
        tokens = prompt_tokens(n_ctx, context_length)
        for kind, row in (("pos", 0), ("neg", 1)):
            self.register_buffer(f"token_prefix_{kind}", torch.zeros(1, 1, 1, width))
            self.register_buffer(f"token_suffix_{kind}", torch.zeros(1, 1, context_length - 1 - n_ctx, width))
            self.register_buffer(f"tokenized_prompts_{kind}", tokens[row].view(1, 1, -1).clone())

    @torch.no_grad()
    def embed_frozen_tokens(self, token_embedding: nn.Embedding) -> None:
        """Fill the prefix/suffix buffers from ``token_embedding``, as the official learner does when built."""
        for kind in ("pos", "neg"):
            tokens = getattr(self, f"tokenized_prompts_{kind}").long().to(token_embedding.weight.device)
            embedded = token_embedding(tokens)  # assigned, not copied: the embedding may be on another device (meta)
            setattr(self, f"token_prefix_{kind}", embedded[:, :, :1].clone())
            setattr(self, f"token_suffix_{kind}", embedded[:, :, 1 + self.n_ctx:].clone())

    def prompts(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(embeddings (2, L, width), token ids (2, L))``: the normal prompt first, then the abnormal one."""
        rows = [torch.cat([getattr(self, f"token_prefix_{k}"), getattr(self, f"ctx_{k}"),
                           getattr(self, f"token_suffix_{k}")], dim=2).flatten(0, 1) for k in ("pos", "neg")]
        tokens = torch.cat([self.tokenized_prompts_pos.flatten(0, 1), self.tokenized_prompts_neg.flatten(0, 1)])
        return torch.cat(rows), tokens


class AnomalyCLIP(CLIP):
    """CLIP with AnomalyCLIP's prompts and DPAM; ``model(images) -> {"score": (B,), "map": (B, H, W)}``."""

    def __init__(self, *, features: Sequence[int] = (24,), dpam_layer: int = 20, n_ctx: int = 12,
                 depth: int = 9, t_n_ctx: int = 4, **clip: int) -> None:
        super().__init__(**clip)
        layers = len(self.visual.transformer.resblocks)
        text_layers = len(self.transformer.resblocks)
        self.features = tuple(int(f) for f in features)
        if not self.features or any(not 1 <= f <= layers for f in self.features):
            raise ValueError(f"features must be block indices in 1..{layers}, got {list(features)}")
        if not 2 <= dpam_layer <= layers + 1:
            raise ValueError(f"dpam_layer must be in 2..{layers + 1} (it replaces the last dpam_layer - 1 blocks), "
                             f"got {dpam_layer}")
        if not 1 <= depth <= text_layers:
            raise ValueError(f"depth must be in 1..{text_layers}, got {depth}")
        self.dpam_start = layers - (dpam_layer - 1)  # 0-based index of the first block with V-V attention
        self.prompt_learner = PromptLearner(self.ln_final.normalized_shape[0], n_ctx=n_ctx, depth=depth,
                                            t_n_ctx=t_n_ctx, context_length=self.positional_embedding.shape[0])
        self.prompt_learner.embed_frozen_tokens(self.token_embedding)

    def text_features(self) -> torch.Tensor:
        """L2-normalised ``(2, embed_dim)``: the normal prompt's feature, then the abnormal one's."""
        learner = self.prompt_learner
        x, tokens = learner.prompts()
        x = x + self.positional_embedding.to(x.dtype)
        deep = list(learner.compound_prompts_text)
        for i, block in enumerate(self.transformer.resblocks):
            if 1 <= i <= len(deep):  # the official block rounds its learned tokens to float16 first
                learned = deep[i - 1].to(torch.float16).to(x.dtype).expand(x.shape[0], -1, -1)
                x = torch.cat([x[:, :1], learned, x[:, 1 + learner.t_n_ctx:]], dim=1)
            x = block(x, causal=True)
        x = self.ln_final(x)
        x = x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)] @ self.text_projection
        return F.normalize(x, dim=-1)

    def image_features(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(global (B, D), [patch tokens (B, 1 + N, D) per layer of features])`` along the DPAM paths."""
        visual = self.visual
        x = visual.embed(images)
        value_value: torch.Tensor | None = None
        taken: list[torch.Tensor] = []
        for i, block in enumerate(visual.transformer.resblocks):
            if i < self.dpam_start:
                x = block(x)
            else:
                attended, vv = block.attn.dual(block.ln_1(x))
                value_value = (x if value_value is None else value_value) + vv
                x = x + attended
                x = x + block.mlp(block.ln_2(x))
            if i + 1 in self.features:
                taken.append(x if value_value is None else value_value)
        patches = [visual.ln_post(t) @ visual.proj for t in taken]
        return x[:, 0] @ visual.proj, patches

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        text = self.text_features()
        glob, patches = self.image_features(images)
        score = ((F.normalize(glob, dim=-1) @ text.T) / TEMPERATURE).softmax(dim=-1)[:, 1]
        size = images.shape[-2:]
        anomaly_map = torch.zeros(images.shape[0], *size, dtype=score.dtype, device=score.device)
        for tokens in patches:
            probs = ((F.normalize(tokens[:, 1:], dim=-1) @ text.T) / TEMPERATURE).softmax(dim=-1)
            side = round(probs.shape[1] ** 0.5)
            probs = probs.transpose(1, 2).reshape(probs.shape[0], 2, side, side)
            probs = F.interpolate(probs, size=size, mode="bilinear")
            anomaly_map = anomaly_map + (probs[:, 1] + 1 - probs[:, 0]) / 2
        return {"score": score, "map": anomaly_map}


def _settings(defaults: dict[str, object], given: dict[str, object]) -> dict[str, object]:
    return {**defaults, **given}


def anomalyclip_vit_l_14_336(**kwargs: object) -> AnomalyCLIP:
    """AnomalyCLIP as ``test.sh`` runs it: ViT-L/14@336 CLIP, features [24], DPAM 20, prompts 12/9/4."""
    defaults = dict(VIT_L_14_336, features=(24,), dpam_layer=20, n_ctx=12, depth=9, t_n_ctx=4)
    return AnomalyCLIP(**_settings(defaults, kwargs))  # type: ignore[arg-type]


def clip_vit_l_14_336(**kwargs: object) -> CLIP:
    """OpenAI CLIP ViT-L/14@336 (both towers): the backbone whose weights AnomalyCLIP builds on."""
    return CLIP(**_settings(dict(VIT_L_14_336), kwargs))  # type: ignore[arg-type]
