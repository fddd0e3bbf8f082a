"""The CNN and the Transformer: shapes, masking, and Hessian-vector products against the dense Hessian."""
from __future__ import annotations

import pytest
import torch
from torch.func import functional_call, hessian

from subspace_kit.datasets import from_tensors
from subspace_kit.hessian import HessianOperator
from subspace_kit.losses import cross_entropy, mse
from subspace_kit.models import MODELS, PaperCNN, TextTransformer, build_model, num_parameters
from subspace_kit.models.transformer import LayerNorm

pytestmark = pytest.mark.timeout(120)


def dense_hessian(model, loss_fn, X, Y) -> torch.Tensor:
    """``∇²`` of the mean loss in the flattened parameters, by ``torch.func.hessian``."""
    named = list(model.named_parameters())
    theta = torch.cat([p.detach().reshape(-1) for _, p in named])

    def loss(flat):
        params, i = {}, 0
        for name, p in named:
            params[name] = flat[i : i + p.numel()].view_as(p)
            i += p.numel()
        return loss_fn(functional_call(model, params, (X,)), Y)

    return hessian(loss)(theta)


def tiny_cnn():
    model = build_model("cnn", input_shape=(2, 4, 4), num_classes=3, widths=(3, 2), seed=1, dtype=torch.float64)
    X = torch.randn(7, 2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    return model, X


def tiny_transformer():
    model = build_model("transformer", input_shape=(4,), num_classes=3, vocab_size=6, dim=4, heads=2, ff_mult=1,
                        seed=1, dtype=torch.float64)
    X = torch.tensor([[3, 1, 4, 1], [2, 5, 0, 0], [5, 3, 5, 0], [1, 0, 0, 0], [4, 2, 2, 3]])  # padding exercises the mask
    return model, X


@pytest.mark.parametrize("make", [tiny_cnn, tiny_transformer], ids=["cnn", "transformer"])
@pytest.mark.parametrize("loss_fn", [mse, cross_entropy], ids=["mse", "ce"])
def test_hvp_matches_dense_hessian_on_both_routes(make, loss_fn):
    model, X = make()
    Y = torch.eye(3, dtype=torch.float64)[torch.arange(len(X)) % 3]
    H = dense_hessian(model, loss_fn, X, Y)
    assert float((H - H.T).norm() / H.norm()) <= 1e-12  # a reference worth comparing with
    V = torch.randn(H.shape[0], 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    for backend in ("reverse", "forward"):
        op = HessianOperator(model, loss_fn, X, Y, backend=backend, chunk_size=3)
        got = op @ V
        assert op.route == backend
        assert float((got - H @ V).norm() / (H @ V).norm()) <= 1e-8, backend


def test_hessian_operator_keeps_token_ids_as_integers():
    model, X = tiny_transformer()
    op = HessianOperator(model, mse, X, torch.zeros(len(X), 3, dtype=torch.float64))
    assert op.X.dtype == torch.int64 and op.dtype == torch.float64


def test_cnn_is_cohens_cnn_relu_on_cifar_shapes():
    model = build_model("cnn", input_shape=(3, 32, 32), num_classes=10)
    assert num_parameters(model) == 30_634  # 896 + 9,248 + 20,490
    assert model(torch.randn(4, 3, 32, 32)).shape == (4, 10)
    assert [type(m).__name__ for m in model][:3] == ["Conv2d", "ReLU", "MaxPool2d"]


def test_cnn_reads_flat_square_images_as_one_channel():
    model = build_model("cnn", input_shape=(784,), num_classes=10)
    assert model(torch.randn(3, 784)).shape == (3, 10)
    with pytest.raises(ValueError, match="perfect square"):
        PaperCNN(input_shape=(785,))


def test_transformer_output_shape_and_size():
    model = build_model("transformer", input_shape=(32,), num_classes=2, vocab_size=1000)
    ids = torch.randint(1, 1000, (5, 32))
    assert model(ids).shape == (5, 2)
    per_block = 2 * 128 + (64 * 192 + 192) + (64 * 64 + 64) + (64 * 256 + 256) + (256 * 64 + 64)
    assert num_parameters(model) == 1000 * 64 + 32 * 64 + 2 * per_block + 128 + 130


def test_plain_layer_norm_equals_torch_layer_norm():
    norm, reference = LayerNorm(6).double(), torch.nn.LayerNorm(6).double()
    with torch.no_grad():
        for p in (*norm.parameters(), *reference.parameters()):
            p.copy_(torch.arange(6.0))
    x = torch.randn(4, 3, 6, dtype=torch.float64)
    assert torch.allclose(norm(x), reference(x), atol=1e-12)


def test_transformer_ignores_padding():
    model = build_model("transformer", input_shape=(8,), num_classes=2, vocab_size=9, dtype=torch.float64)
    ids = torch.tensor([[4, 2, 7, 0, 0, 0, 0, 0], [1, 3, 3, 5, 6, 0, 0, 0]])
    # the same sentences with less padding give the same outputs
    assert torch.allclose(model(ids), model(ids[:, :5]), atol=1e-12)
    # changing a real token does change the output
    assert not torch.allclose(model(ids), model(ids.index_fill(1, torch.tensor([0]), 8)))


def test_transformer_runs_on_the_device_of_its_inputs():
    model = build_model("transformer", input_shape=(6,), num_classes=2, vocab_size=9).to("meta")
    assert model(torch.zeros(3, 6, dtype=torch.int64, device="meta")).device.type == "meta"


def test_build_model_reads_shapes_and_vocabulary_from_the_data():
    data = from_tensors(torch.tensor([[1, 2, 0], [3, 0, 0]]), [0, 1], meta={"vocab_size": 4, "pad_id": 0})
    model = build_model("transformer", data=data)
    assert model.tokens.num_embeddings == 4 and model.head.out_features == 2
    assert build_model("mlp", data=from_tensors(torch.randn(2, 5), [0, 1]))[1].in_features == 5
    with pytest.raises(ValueError, match="vocab_size must be given"):
        build_model("transformer", input_shape=(3,), num_classes=2)


def test_same_seed_same_weights():
    for name, kwargs in [("cnn", {"input_shape": (3, 8, 8)}), ("transformer", {"input_shape": (4,), "vocab_size": 5})]:
        a, b = (build_model(name, num_classes=2, seed=5, **kwargs) for _ in range(2))
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert set(MODELS) == {"mlp", "cnn", "transformer"}
    assert isinstance(build_model("transformer", input_shape=(4,), num_classes=2, vocab_size=5), TextTransformer)
