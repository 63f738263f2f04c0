"""Write tests/data/hub_checkpoint_keys.json: ``{hub repo: {key: shape}}`` of the Hub checkpoints' layout.

The ``facebook/mask2former-swin-*-coco-instance`` files were written by transformers 4.x (Mask2Former
arrived in 4.26, Jan 2023; the conversion script pushed them). No machine here reaches the Hub, so
the layout is rebuilt from that code: transformers 4.26.1's ``Mask2FormerForUniversalSegmentation``
with the configs of the conversion script (``OriginalMask2FormerConfigToOursConverter`` at
huggingface/transformers@0197608 applied to facebookresearch/Mask2Former@9b0651c's COCO-instance
Swin configs; see ``zoo_mask2former/variants.py``). It writes them out independently of the plugin:
this file must not import zoo_mask2former. Run outside the repository's test suite, with the old
transformers first on the path (it needs huggingface_hub < 1, zoo's venv has 2.x)::

    pip install --no-deps --target /tmp/tf4 transformers==4.26.1 huggingface_hub==0.16.4 \
        tokenizers==0.13.3 requests urllib3 idna charset_normalizer certifi
    PYTHONPATH=/tmp/tf4 .venv/bin/python plugins/mask2former/tools/hub_manifest.py

Parameter counts it prints (buffers included, i.e. with ``relative_position_index``): tiny
47,450,536; small 68,797,252; base 107,401,946; large 216,019,734. A float32 file of the tiny model is
190 MB, the size the Hub lists for its ``pytorch_model.bin``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import transformers
from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, SwinConfig

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "hub_checkpoint_keys.json"
STAGES = ["stage1", "stage2", "stage3", "stage4"]


def swin_config(size: str) -> SwinConfig:
    """The backbone config the conversion script used for each embed dim."""
    if size in ("tiny", "small"):  # SwinConfig.from_pretrained("microsoft/swin-tiny-patch4-window7-224"), depths set after
        config = SwinConfig(image_size=224, embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7,
                            out_features=STAGES)
        config.depths = [2, 2, 6, 2] if size == "tiny" else [2, 2, 18, 2]
        return config
    if size == "base":  # written out in the script
        return SwinConfig(embed_dim=128, window_size=12, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32),
                          out_features=STAGES)
    # SwinConfig.from_pretrained("microsoft/swin-large-patch4-window12-384")
    return SwinConfig(image_size=384, embed_dim=192, depths=[2, 2, 18, 2], num_heads=[6, 12, 24, 48], window_size=12,
                      out_features=STAGES)


def main() -> None:
    if not transformers.__version__.startswith("4."):
        sys.exit(f"run with transformers 4.x (the version that wrote the Hub files), found {transformers.__version__}")
    manifest = {}
    for size, queries in (("tiny", 100), ("small", 100), ("base", 100), ("large", 200)):
        config = Mask2FormerConfig(
            backbone_config=swin_config(size), num_labels=80, num_queries=queries, feature_size=256,
            mask_feature_size=256, hidden_dim=256, encoder_layers=6, encoder_feedforward_dim=1024, decoder_layers=10,
            num_attention_heads=8, dim_feedforward=2048, common_stride=4, feature_strides=[4, 8, 16, 32],
            enforce_input_proj=False, pre_norm=False)
        model = Mask2FormerForUniversalSegmentation(config)
        state = model.state_dict()
        manifest[f"facebook/mask2former-swin-{size}-coco-instance"] = {k: list(v.shape) for k, v in state.items()}
        print(size, len(state), sum(v.numel() for v in state.values()))
    lines = ["{"]
    for i, (repo, keys) in enumerate(manifest.items()):
        lines.append(f" {json.dumps(repo)}: {{")
        lines += [f"  {json.dumps(k)}: {json.dumps(s)}," for k, s in keys.items()]
        lines[-1] = lines[-1].rstrip(",")
        lines.append(" }" + ("," if i < len(manifest) - 1 else ""))
    lines.append("}")
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {OUT} (transformers {transformers.__version__})")


if __name__ == "__main__":
    main()
