"""The FAD/KAD study's heavy linear algebra, on the GPU when there is one, else numpy/LAPACK.

Gram matrices, kernel blocks and symmetric eigenvalues are where the study's time goes;
on a GPU node they run through ``torch.linalg`` on the first CUDA device, in float64 (the
trace term of the Fréchet distance is a difference of large numbers, and float32 round-off
would show in it). Results equal the CPU path to round-off (the tests run the torch path
on the CPU against numpy). ``on_device("cpu")`` forces the torch path on a device, and
``on_device(None)`` numpy, inside a ``with`` block.
"""

from __future__ import annotations

import contextlib

import numpy as np

_FORCED: list = []  # stack of devices set by `on_device`; empty: automatic
_AUTO: list = []  # cached automatic choice


def device():
    """The torch device the maths runs on, or None for numpy."""
    if _FORCED:
        return _FORCED[-1]
    if not _AUTO:
        import torch

        _AUTO.append(torch.device("cuda") if torch.cuda.is_available() else None)
    return _AUTO[0]


@contextlib.contextmanager
def on_device(where):
    """Run the enclosed maths on torch device ``where`` ("cpu", "cuda", …) or numpy (None)."""
    import torch

    _FORCED.append(None if where is None else torch.device(where))
    try:
        yield
    finally:
        _FORCED.pop()


def _t(x, where):
    import torch

    return torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float64, device=where)


def gram(x: np.ndarray) -> np.ndarray:
    """xᵀx (frames × dims in, dims × dims out)."""
    where = device()
    if where is None:
        return x.T @ x  # numpy calls syrk for the product of an array with its transpose
    t = _t(x, where)
    return (t.T @ t).cpu().numpy()


def sqrt_eigen_sum(sym: np.ndarray) -> float:
    """Σ √λ over the eigenvalues λ of a symmetric PSD matrix (round-off below 0 clipped)."""
    where = device()
    if where is None:
        return float(np.sqrt(np.clip(np.linalg.eigvalsh(sym), 0.0, None)).sum())
    import torch

    return float(torch.linalg.eigvalsh(_t(sym, where)).clamp_min(0).sqrt().sum())


def nuclear_norm(m: np.ndarray) -> float:
    """The sum of singular values."""
    where = device()
    if where is None:
        return float(np.linalg.svd(m, compute_uv=False).sum())
    import torch

    return float(torch.linalg.svdvals(_t(m, where)).sum())


def trace_sqrt_product(cov_a: np.ndarray, cov_b: np.ndarray) -> float | None:
    """Tr((S_a S_b)^½) on the device through a Cholesky factor (S_a = L Lᵀ: the eigenvalues of
    Lᵀ S_b L); None when no device is in use or neither factor exists (the caller's LAPACK path)."""
    where = device()
    if where is None:
        return None
    import torch

    a, b = _t(cov_a, where), _t(cov_b, where)
    for first, second in ((a, b), (b, a)):
        factor, info = torch.linalg.cholesky_ex(first)
        if int(info) == 0:
            product = factor.T @ second @ factor
            return float(torch.linalg.eigvalsh(product).clamp_min(0).sqrt().sum())
    return None


def rbf_unit_sums(x: np.ndarray, y: np.ndarray, sq_y: np.ndarray, units_y: np.ndarray, ny: int,
                  gamma: float) -> np.ndarray:
    """Row i, column q: Σ_j exp(-γ|x_i - y_j|²) over the frames j of unit q (len(x) × ny).

    Squared distances as |x|² + |y|² - 2 x·y, as kadtk forms them."""
    where = device()
    identity = ny == y.shape[0] and np.array_equal(units_y, np.arange(ny))
    if where is None:
        d2 = np.einsum("ij,ij->i", x, x)[:, None] + sq_y[None, :] - 2.0 * (x @ y.T)
        kernel = np.exp(-gamma * d2)
        if identity:
            return kernel
        return kernel @ _one_hot(units_y, ny)
    import torch

    tx, ty = _t(x, where), _t(y, where)
    d2 = (tx * tx).sum(1)[:, None] + _t(sq_y, where)[None, :] - 2.0 * (tx @ ty.T)
    kernel = torch.exp(-gamma * d2)
    if not identity:
        kernel = kernel @ _t(_one_hot(units_y, ny), where)
    return kernel.cpu().numpy()


def _one_hot(units: np.ndarray, count: int) -> np.ndarray:
    out = np.zeros((units.size, count))
    out[np.arange(units.size), units] = 1.0
    return out
