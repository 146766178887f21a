"""The shared model set: the benchmark models and the small well-formed models the tests compile.

Each factory returns (module, example_inputs), like any cascc model factory, and runs without arguments.
The benchmark factories (`MODELS`) take a batch size and keep untrained weights (latency does not depend on
their values); the small ones are seeded, so a test sees the same weights on every run. tests/models.py
serves the small ones under the names tests reference (`tests/models.py:mlp`) beside its broken factories.

`ZOO` holds the third-party architectures (`transformers` classes, the `zoo` extra), each factory taking
`small=True` for the reduced zoo the tests compile; `python benchmarks/zoo.py` runs the zoo benchmark
(`zoo_bench.py`).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn


def relu_mlp(*widths: int, bias: bool = True) -> nn.Sequential:
    """A ReLU MLP with the given layer widths (no activation after the last layer)."""
    mods: list[nn.Module] = []
    for a, b in itertools.pairwise(widths):
        mods += [nn.Linear(a, b, bias=bias), nn.ReLU()]
    return nn.Sequential(*mods[:-1])


def mlp(batch: int = 1):
    """MLP 784-1024-1024-10."""
    return relu_mlp(784, 1024, 1024, 10), (torch.randn(batch, 784),)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.short is None else self.short(x)))


class ResNet20(nn.Module):
    """ResNet-20 for CIFAR-10 (He et al. 2016): 3 stages of 3 basic blocks, 16/32/64 channels."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        blocks, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                blocks.append(BasicBlock(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def resnet20(batch: int = 1):
    return ResNet20().eval(), (torch.randn(batch, 3, 32, 32),)


class DSCNN(nn.Module):
    """DS-CNN-S keyword spotting (Zhang et al., "Hello Edge", 2017) on 49×10 MFCC frames, 12 classes."""

    def __init__(self, width: int = 64, classes: int = 12):
        super().__init__()
        layers = [nn.Conv2d(1, width, (10, 4), (2, 2), (5, 1), bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        for _ in range(4):
            layers += [
                nn.Conv2d(width, width, 3, 1, 1, groups=width, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.Conv2d(width, width, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
            ]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(width, classes)

    def forward(self, x):
        x = self.features(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def dscnn(batch: int = 1):
    return DSCNN().eval(), (torch.randn(batch, 1, 49, 10),)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.body = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x):
        y = self.body(x)
        return x + y if self.use_res else y


class MobileNetV2Small(nn.Module):
    """A MobileNetV2-style net (Sandler et al. 2018) at width 0.5 on 96×96 inputs, 10 classes."""

    def __init__(self, classes: int = 10):
        super().__init__()
        cfg = [(1, 8, 1, 1), (6, 12, 2, 2), (6, 16, 3, 2), (6, 32, 2, 2), (6, 48, 2, 1), (6, 80, 1, 2)]
        layers = [nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6()]
        cin = 16
        for t, c, n, s in cfg:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers += [nn.Conv2d(cin, 320, 1, bias=False), nn.BatchNorm2d(320), nn.ReLU6()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(320, classes)

    def forward(self, x):
        x = self.features(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def mobilenetv2(batch: int = 1):
    return MobileNetV2Small().eval(), (torch.randn(batch, 3, 96, 96),)


class Transformer(nn.Module):
    """A 2-layer transformer encoder: d_model 128, 4 heads, FFN 512, sequence 64, mean-pooled classifier."""

    def __init__(self, d: int = 128, classes: int = 10):
        super().__init__()
        layer = nn.TransformerEncoderLayer(d, 4, 512, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.fc = nn.Linear(d, classes)

    def forward(self, x):
        return self.fc(self.encoder(x).mean(dim=1))


def transformer(batch: int = 1):
    return Transformer().eval(), (torch.randn(batch, 64, 128),)


# The small models tests compile: a few seconds each, seeded.


def small_mlp() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """A 20-32-24-5 ReLU MLP with a batch of 3."""
    torch.manual_seed(1)
    return relu_mlp(20, 32, 24, 5), (torch.randn(3, 20),)


def lenet_300_100() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """LeNet-300-100 (784-300-100-10) at batch 1."""
    torch.manual_seed(4)
    return relu_mlp(784, 300, 100, 10), (torch.randn(1, 784),)


def gpu_mlp() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """1024-4096-10: a hidden layer big enough that, sparse, its CSR kernel beats the dense GPU matmul."""
    torch.manual_seed(0)
    return relu_mlp(1024, 4096, 10), (torch.randn(2, 1024),)


class ResidualCNN(nn.Module):
    """conv-BN-ReLU stem, a residual block, a depthwise conv, max-pool and a linear head."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 1)
        self.dw = nn.Conv2d(width, width, 3, padding=1, groups=width)
        self.head = nn.Linear(width * 4 * 4, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn(self.stem(x)))
        y = torch.relu(y + self.conv2(torch.relu(self.bn1(self.conv1(y)))))
        y = nn.functional.max_pool2d(torch.relu(self.dw(y)), 2)
        return self.head(torch.flatten(y, 1))


def cnn() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """ResidualCNN with non-trivial BatchNorm statistics, on a 2×3×8×8 batch."""
    torch.manual_seed(2)
    model = ResidualCNN()
    with torch.no_grad():
        for bn in (model.bn, model.bn1):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
    return model, (torch.randn(2, 3, 8, 8),)


class SeparableCNN(nn.Module):
    """Depthwise-separable CNN: stem, two depthwise + pointwise blocks, global average pool, linear head."""

    def __init__(self, width: int = 16):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        blocks = []
        for _ in range(2):
            blocks += [
                nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.Conv2d(width, width, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
            ]
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(width, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.blocks(self.stem(x))
        return self.head(y.mean(dim=(2, 3)))


def separable_cnn() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """SeparableCNN on a 2×3×8×8 batch."""
    torch.manual_seed(3)
    return SeparableCNN(), (torch.randn(2, 3, 8, 8),)


# The zoo: third-party architectures in their usual deployment shapes, built from `transformers` model
# classes with random weights from configs (the `zoo` extra; nothing is downloaded, `from_pretrained` is
# never called). Each factory takes `small=True` for the reduced zoo the tests compile: the same
# architecture at small width and resolution.


def _transformers():
    """The `transformers` package, offline; a clear error when the `zoo` extra is not installed."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import transformers
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SystemExit("the zoo needs the `zoo` extra: pip install -e '.[test,zoo]'") from exc
    transformers.logging.set_verbosity_error()
    return transformers


class Output(nn.Module):
    """A `transformers` model returning one tensor: its `field` (logits, last_hidden_state)."""

    def __init__(self, model: nn.Module, field: str):
        super().__init__()
        self.model, self.field = model, field

    def forward(self, *args):
        return getattr(self.model(*args), self.field)


def _hf(config_name: str, model_name: str, field: str, **config) -> nn.Module:
    tf = _transformers()
    torch.manual_seed(0)
    model = getattr(tf, model_name)(getattr(tf, config_name)(**config))
    return Output(model.eval(), field).eval()


NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)


def trained_like(model: nn.Module, inputs: tuple[torch.Tensor, ...]):
    """Give a randomly initialized model the statistics of a trained one, so its outputs are O(1).

    `transformers` initializes norm scales from N(0, 0.02) in some models (EfficientNet, MobileViT), which
    collapses a deep CNN's output to 0 or subnormals, and leaves BatchNorm's running statistics at (0, 1)
    whatever the layer computes. Here norm scales and shifts are drawn near (1, 0) and BatchNorm statistics
    are measured on random inputs of the example's shape, as training would have left them. Returns
    (model, inputs), a factory's result."""
    gen = torch.Generator().manual_seed(2)
    bns = []
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, NORMS) and getattr(mod, "weight", None) is not None:
                mod.weight.copy_(torch.rand(mod.weight.shape, generator=gen) + 0.5)
                mod.bias.copy_((torch.rand(mod.bias.shape, generator=gen) - 0.5) * 0.2)
            if isinstance(mod, nn.BatchNorm1d | nn.BatchNorm2d):
                mod.reset_running_stats()
                mod.momentum = None  # cumulative average over the calibration batches
                bns.append(mod)
        if bns:
            model.train()
            for _ in range(4):
                model(*(_draw(x, gen) for x in inputs))
    return model.eval(), inputs


def _draw(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A batch of 4 like `x`: fresh Gaussian floats, other dtypes repeated."""
    if x.is_floating_point():
        return torch.randn((4, *x.shape[1:]), generator=gen)
    return x[:1].repeat(4, *[1] * (x.dim() - 1))


def _image(size: int, batch: int = 1) -> tuple[torch.Tensor]:
    torch.manual_seed(1)
    return (torch.randn(batch, 3, size, size),)


def _tokens(vocab: int, length: int, batch: int = 1, pad: int = 0) -> tuple[torch.Tensor, ...]:
    """Token ids and an attention mask whose last `pad` positions are padding."""
    torch.manual_seed(1)
    ids = torch.randint(0, vocab, (batch, length))
    mask = torch.ones(batch, length, dtype=torch.int64)
    if pad:
        mask[:, -pad:] = 0
    return ids, mask


def resnet18(small: bool = False):
    """ResNet-18 (basic blocks 2-2-2-2) at 224 px; small: widths 8-64 at 64 px."""
    widths = [8, 16, 32, 64] if small else [64, 128, 256, 512]
    model = _hf(
        "ResNetConfig",
        "ResNetForImageClassification",
        "logits",
        embedding_size=widths[0],
        hidden_sizes=widths,
        depths=[2, 2, 2, 2],
        layer_type="basic",
        num_labels=10 if small else 1000,
    )
    return trained_like(model, _image(64 if small else 224))


def resnet50(small: bool = False):
    """ResNet-50 (bottlenecks 3-4-6-3) at 224 px; small: depths 1-1-1-1, widths 32-256 at 64 px."""
    widths = [32, 64, 128, 256] if small else [256, 512, 1024, 2048]
    model = _hf(
        "ResNetConfig",
        "ResNetForImageClassification",
        "logits",
        embedding_size=widths[0] // 4,
        hidden_sizes=widths,
        depths=[1, 1, 1, 1] if small else [3, 4, 6, 3],
        layer_type="bottleneck",
        num_labels=10 if small else 1000,
    )
    return trained_like(model, _image(64 if small else 224))


def mobilenetv2_hf(small: bool = False):
    """MobileNetV2 1.0 at 224 px; small: 0.35 at 64 px."""
    size = 64 if small else 224
    model = _hf(
        "MobileNetV2Config",
        "MobileNetV2ForImageClassification",
        "logits",
        depth_multiplier=0.35 if small else 1.0,
        image_size=size,
        num_labels=10 if small else 1000,
    )
    return trained_like(model, _image(size))


def efficientnet_b0(small: bool = False):
    """EfficientNet-B0 at 224 px (squeeze-excitation, SiLU); small: width 0.25, depth 0.2 at 64 px."""
    size = 64 if small else 224
    model = _hf(
        "EfficientNetConfig",
        "EfficientNetForImageClassification",
        "logits",
        image_size=size,
        width_coefficient=0.25 if small else 1.0,
        depth_coefficient=0.2 if small else 1.0,
        hidden_dim=320 if small else 1280,
        num_labels=10 if small else 1000,
    )
    return trained_like(model, _image(size))


def convnext_tiny(small: bool = False):
    """ConvNeXt-T (7x7 depthwise, LayerNorm over channels, GELU) at 224 px; small: 1-1-1-1 of 16-128 at 64 px."""
    model = _hf(
        "ConvNextConfig",
        "ConvNextForImageClassification",
        "logits",
        hidden_sizes=[16, 32, 64, 128] if small else [96, 192, 384, 768],
        depths=[1, 1, 1, 1] if small else [3, 3, 9, 3],
        num_labels=10 if small else 1000,
    )
    return trained_like(model, _image(64 if small else 224))


def regnet_y_400mf(small: bool = False):
    """RegNetY-400MF (grouped convs, squeeze-excitation) at 224 px; small: 1-1-1-1 of 16-64 at 64 px."""
    model = _hf(
        "RegNetConfig",
        "RegNetForImageClassification",
        "logits",
        embedding_size=16 if small else 32,
        hidden_sizes=[16, 24, 48, 64] if small else [48, 104, 208, 440],
        depths=[1, 1, 1, 1] if small else [1, 3, 6, 6],
        groups_width=8,
        layer_type="y",
        num_labels=10 if small else 1000,
    )
    return trained_like(model, _image(64 if small else 224))


def vit_tiny(small: bool = False):
    """ViT-Ti/16 (DeiT-tiny shape: 12 layers of 192, 3 heads) at 224 px; small: 2 layers of 64 at 32 px."""
    size = 32 if small else 224
    model = _hf(
        "ViTConfig",
        "ViTForImageClassification",
        "logits",
        image_size=size,
        patch_size=8 if small else 16,
        hidden_size=64 if small else 192,
        num_hidden_layers=2 if small else 12,
        num_attention_heads=2 if small else 3,
        intermediate_size=128 if small else 768,
        num_labels=10 if small else 1000,
    )
    return trained_like(model, _image(size))


def mobilevit_xxs(small: bool = False):
    """MobileViT-XXS at 256 px; small: the same blocks at 64 px."""
    size = 64 if small else 256
    model = _hf(
        "MobileViTConfig",
        "MobileViTForImageClassification",
        "logits",
        image_size=size,
        hidden_sizes=[64, 80, 96],
        neck_hidden_sizes=[16, 16, 24, 48, 64, 80, 320],
        expand_ratio=2.0,
        num_labels=10 if small else 1000,
    )
    return trained_like(model, _image(size))


def bert_base(small: bool = False):
    """A BERT-base-shaped encoder (12 layers of 768) on 128 tokens with padding; small: 2 layers of 64 on 16."""
    length = 16 if small else 128
    vocab = 512 if small else 30522
    model = _hf(
        "BertConfig",
        "BertModel",
        "last_hidden_state",
        vocab_size=vocab,
        hidden_size=64 if small else 768,
        num_hidden_layers=2 if small else 12,
        num_attention_heads=2 if small else 12,
        intermediate_size=128 if small else 3072,
        max_position_embeddings=512,
    )
    return trained_like(model, _tokens(vocab, length, pad=length // 4))


def bert_tiny(small: bool = False):
    """BERT-tiny (2 layers of 128, 2 heads) on 128 tokens with padding; small: on 16 tokens."""
    length = 16 if small else 128
    vocab = 512 if small else 30522
    model = _hf(
        "BertConfig",
        "BertModel",
        "last_hidden_state",
        vocab_size=vocab,
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=512,
        max_position_embeddings=512,
    )
    return trained_like(model, _tokens(vocab, length, pad=length // 4))


def distilbert(small: bool = False):
    """DistilBERT-base (6 layers of 768) on 128 tokens with padding; small: 2 layers of 64 on 16."""
    length = 16 if small else 128
    vocab = 512 if small else 30522
    model = _hf(
        "DistilBertConfig",
        "DistilBertModel",
        "last_hidden_state",
        vocab_size=vocab,
        dim=64 if small else 768,
        n_layers=2 if small else 6,
        n_heads=2 if small else 12,
        hidden_dim=128 if small else 3072,
    )
    return trained_like(model, _tokens(vocab, length, pad=length // 4))


def gpt2(small: bool = False):
    """A GPT-2-style causal decoder (distilgpt2 shape: 6 layers of 768) at a fixed 64 tokens; small: 2 of 64 on 16."""
    length = 16 if small else 64
    vocab = 512 if small else 50257
    model = _hf(
        "GPT2Config",
        "GPT2Model",
        "last_hidden_state",
        vocab_size=vocab,
        n_positions=256,
        n_embd=64 if small else 768,
        n_layer=2 if small else 6,
        n_head=2 if small else 12,
    )
    return trained_like(model, _tokens(vocab, length)[:1])


def whisper_tiny_encoder(small: bool = False):
    """Whisper-tiny's encoder (Conv1d stem, 4 layers of 384) on 30 s of 80 mel bins; small: 2 of 64 on 1 s."""
    tf = _transformers()
    frames = 100 if small else 3000
    torch.manual_seed(0)
    config = tf.WhisperConfig(
        d_model=64 if small else 384,
        encoder_layers=2 if small else 4,
        encoder_attention_heads=2 if small else 6,
        encoder_ffn_dim=128 if small else 1536,
        decoder_layers=1,
        max_source_positions=frames // 2,
        num_mel_bins=80,
    )
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    model = Output(WhisperEncoder(config).eval(), "last_hidden_state").eval()
    torch.manual_seed(1)
    return trained_like(model, (torch.randn(1, 80, frames),))


def wav2vec2(small: bool = False):
    """Wav2Vec2-base (7-layer Conv1d feature extractor, grouped positional conv, 12 layers of 768) on 1 s of
    16 kHz audio; small: 64 channels, 2 layers on 0.2 s."""
    samples = 3200 if small else 16000
    kwargs = {}
    if small:
        kwargs = {
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 128,
            "conv_dim": (64,) * 7,
            "num_conv_pos_embeddings": 16,
            "num_conv_pos_embedding_groups": 4,
        }
    model = _hf("Wav2Vec2Config", "Wav2Vec2Model", "last_hidden_state", **kwargs)
    torch.manual_seed(1)
    return trained_like(model, (torch.randn(1, samples),))


class TCResNet(nn.Module):
    """TC-ResNet8 keyword spotting (Choi et al. 2019): temporal Conv1d residual blocks over 40 MFCC x 101 frames."""

    def __init__(self, width: float = 1.0, classes: int = 12):
        super().__init__()
        c = [int(w * width) for w in (16, 24, 32, 48)]
        self.stem = nn.Conv1d(40, c[0], 3, padding=1, bias=False)
        blocks = []
        for cin, cout in itertools.pairwise(c):
            blocks.append(TemporalBlock(cin, cout))
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c[-1], classes)

    def forward(self, x):
        return self.fc(self.blocks(self.stem(x)).mean(dim=2))


class TemporalBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(cin, cout, 9, 2, 4, bias=False),
            nn.BatchNorm1d(cout),
            nn.ReLU(),
            nn.Conv1d(cout, cout, 9, 1, 4, bias=False),
            nn.BatchNorm1d(cout),
        )
        self.short = nn.Sequential(nn.Conv1d(cin, cout, 1, 2, bias=False), nn.BatchNorm1d(cout), nn.ReLU())

    def forward(self, x):
        return torch.relu(self.body(x) + self.short(x))


def tc_resnet8(small: bool = False):
    """TC-ResNet8 on 40 MFCC x 101 frames; small: half width on 40 x 32."""
    torch.manual_seed(0)
    model = TCResNet(0.5 if small else 1.0).eval()
    torch.manual_seed(1)
    return trained_like(model, (torch.randn(1, 40, 32 if small else 101),))


# Prunable layer kinds cascc claims kernels for: a zoo layer of these kinds on TVM's generic lowering fails
# tests/test_zoo.py and is counted in the benchmark.
CLAIMED = frozenset({"linear", "conv", "depthwise"})

# kind: "cnn" or "encoder" (the speed targets differ), "decoder", "audio" (Conv1d stem + encoder).
ZOO = {
    "resnet18": (resnet18, "cnn"),
    "resnet50": (resnet50, "cnn"),
    "mobilenetv2-1.0": (mobilenetv2_hf, "cnn"),
    "efficientnet-b0": (efficientnet_b0, "cnn"),
    "convnext-tiny": (convnext_tiny, "cnn"),
    "regnety-400mf": (regnet_y_400mf, "cnn"),
    "vit-tiny": (vit_tiny, "encoder"),
    "mobilevit-xxs": (mobilevit_xxs, "cnn"),
    "bert-base": (bert_base, "encoder"),
    "bert-tiny": (bert_tiny, "encoder"),
    "distilbert": (distilbert, "encoder"),
    "gpt2": (gpt2, "decoder"),
    "whisper-tiny-encoder": (whisper_tiny_encoder, "audio"),
    "wav2vec2": (wav2vec2, "audio"),
    "tc-resnet8": (tc_resnet8, "cnn"),
}


# The benchmark set: each factory takes the batch size.
MODELS = {
    "mlp": mlp,
    "resnet20": resnet20,
    "dscnn": dscnn,
    "mobilenetv2": mobilenetv2,
    "transformer": transformer,
}


if __name__ == "__main__":
    from zoo_bench import main

    main()
