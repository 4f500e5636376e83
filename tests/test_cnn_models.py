"""CNNs as the model libraries define them (geffnet, efficientnet-pytorch) and ResNet-18 / 50
written here as torchvision writes them (its wheel cannot be imported beside the CPU torch), through
intinfer.quantize and intinfer.qat: the exporter's float graph equals torch, the engine's int8
output tracks the float model (cosine >= 0.98 on random-normal 32x32 inputs, the distribution it
was calibrated on), and the engine equals intinfer.qat's eval model (and tests/oracle.py) bit for
bit. The weights are the libraries' own random initialization (efficientnet-pytorch, which has
none, gets its reference's; nothing is downloaded), so the cosines measure the arithmetic, not
accuracy on images. In-place activations (geffnet's silu_,
ResNet's relu_ and `out += identity`) are exported as their out-of-place ops."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
geffnet = pytest.importorskip("geffnet", reason="installed by scripts/setup.sh")
efficientnet_pytorch = pytest.importorskip("efficientnet_pytorch", reason="installed by scripts/setup.sh")

import intinfer  # noqa: E402
from intinfer import qat  # noqa: E402
from test_qat import engine_and_oracle  # noqa: E402

SIZE = 32


class Residual(nn.Module):
    """What torchvision's ResNet blocks share: a 1x1 downsampling shortcut where the shape
    changes, then `out += identity` and an in-place ReLU after the block's branch."""

    def shortcut(self, cin, cout, stride):
        """The block's last modules, in torchvision's order (the random initialization follows it)."""
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.branch(x)
        out += identity
        return self.relu(out)


class BasicBlock(Residual):
    """ResNet-18's block: two 3x3 convs."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut(cin, cout, stride)

    def branch(self, x):
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))


class Bottleneck(Residual):
    """ResNet-50's bottleneck (torchvision's v1.5: the stride on the 3x3 conv): 1x1 down to
    `width`, 3x3, 1x1 up to 4 x width."""

    def __init__(self, cin, width, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, 4 * width, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * width)
        self.shortcut(cin, 4 * width, stride)

    def branch(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.bn3(self.conv3(self.relu(self.bn2(self.conv2(out)))))


class ResNet(nn.Module):
    """ResNet (He et al. 2016) in torchvision's layout: 7x7 stem, 3x3 max pool, four stages of
    blocks (ResNet-18: two basic blocks each; ResNet-50: 3, 4, 6, 3 bottlenecks), adaptive average
    pool, flatten, fully connected."""

    def __init__(self, bottleneck=False, blocks=(2, 2, 2, 2), num_classes=1000, width=64):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, cin = [], width
        for i, n in enumerate(blocks):
            w = width << i
            layers = []
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                layers.append(Bottleneck(cin, w, stride) if bottleneck else BasicBlock(cin, w, stride))
                cin = 4 * w if bottleneck else w
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def init_like_the_reference(model):
    """The initialization of the TensorFlow reference (and geffnet): conv weights normal with
    variance 2 / fan-out, classifier uniform within 1 / sqrt(outputs). efficientnet-pytorch leaves
    torch's defaults, under which a random B0's features fade to 1e-13 by the last block and every
    output is the classifier's bias."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
            nn.init.normal_(m.weight, 0, (2 / fan_out) ** 0.5)
        elif isinstance(m, nn.Linear):
            bound = 1 / m.out_features ** 0.5
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)
    return model


def efficientnet_pytorch_b0():
    return init_like_the_reference(efficientnet_pytorch.EfficientNet.from_name("efficientnet-b0", image_size=SIZE))


def resnet50():
    """ResNet-50 with each bottleneck's last batch-norm gamma at 0.2: with torch's unit gammas the
    sixteen random branches add up to outputs that hardly depend on the input (spread 0.08, below
    the test's 0.1); trained ResNets keep these gammas small (torchvision's zero_init_residual
    starts them at 0, after Goyal et al. 2017)."""
    model = ResNet(bottleneck=True, blocks=(3, 4, 6, 3))
    for m in model.modules():
        if isinstance(m, Bottleneck):
            nn.init.constant_(m.bn3.weight, 0.2)
    return model


MODELS = {
    "geffnet_mobilenetv2_100": lambda: geffnet.mobilenetv2_100(),
    "geffnet_mobilenetv3_large_100": lambda: geffnet.mobilenetv3_large_100(),
    "geffnet_mobilenetv3_small_100": lambda: geffnet.mobilenetv3_small_100(),
    "geffnet_mnasnet_100": lambda: geffnet.mnasnet_100(),
    "geffnet_fbnetc_100": lambda: geffnet.fbnetc_100(),
    "geffnet_efficientnet_b0": lambda: geffnet.efficientnet_b0(),
    "efficientnet_pytorch_b0": efficientnet_pytorch_b0,
    "resnet18": lambda: ResNet(),
    "resnet50": lambda: resnet50(),
}


def build(name):
    torch.manual_seed(0)
    return MODELS[name]().eval()


def images(n, seed):
    return torch.randn(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def cosine(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module", params=sorted(MODELS))
def exported(request):
    model = build(request.param)
    calibration = [images(4, 1 + i) for i in range(2)]
    # Round-to-nearest weights without bias correction: GPTQ would take minutes per model here.
    q = intinfer.quantize(model, (calibration[0][:1],), calibration, weight_rounding="nearest",
                          bias_correction=False)
    return request.param, model, q


def test_float_graph_equals_torch(exported):
    _, model, q = exported
    x = images(2, 10)
    with torch.no_grad():
        want = model(x).numpy()
    got = q.graph.run(x)[q.graph.outputs[0]].numpy()
    np.testing.assert_allclose(got, want, atol=1e-4 * np.abs(want).max(), rtol=1e-3)


def test_engine_tracks_the_float_model(exported):
    name, model, q = exported
    x = images(4, 11)
    with torch.no_grad():
        want = model(x).numpy()
    got = q.load(num_threads=2).run(x.numpy())
    assert got.shape == want.shape
    # Outputs that hardly depend on the input (a network whose activations fade) would make any
    # cosine look good.
    spread = want.std(0).mean() / np.abs(want).mean()
    c = cosine(got, want)
    print(f"\n{name}: output cosine with float, mean {c.mean():.4f}, min {c.min():.4f}; spread {spread:.3f}")
    assert spread > 0.1, (name, spread)
    assert c.min() >= 0.98, (name, c)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_engine_equals_the_qat_eval_model_bit_for_bit(name):
    model = build(name)
    qm = qat.prepare(model, (images(1, 0),))
    qm.train()
    with torch.no_grad():
        qm(images(2, 20))
    qm.eval()
    x = images(2, 30)
    with torch.no_grad():
        got = qm(x).numpy()
    want, _ = engine_and_oracle(qm, (x,))
    np.testing.assert_array_equal(got, want)
